"""The one small interface of a way to pay creators out, and its modules (`sepa`).

A method checks the bank account a member gives (`account`), writes one file of payouts
for the platform's bank (`write`) and reads such a file back (`read`), so that the bank's
answer to it can be recorded against the payouts it named (core/payout_batches.py).
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class BankAccount:
    iban: str  # compact
    bic: str | None
    holder_name: str


@dataclass(frozen=True)
class PayoutLine:
    payout_id: int
    amount_micros: int  # whole cents
    account: BankAccount


@dataclass(frozen=True)
class PayoutFile:
    message_id: str
    lines: tuple[PayoutLine, ...]


class PayoutMethod(Protocol):
    name: str

    def account(self, iban: str, holder_name: str, bic: str | None = None) -> BankAccount: ...

    def write(self, message_id: str, lines: list[PayoutLine], now: datetime) -> bytes: ...

    def read(self, document: bytes) -> PayoutFile: ...
