"""Payouts by SEPA credit transfer: IBANs checked by schwifty, pain.001 files by sepaxml.

One file is one message (`GrpHdr/MsgId`) with one transaction per payout, named by its
end-to-end id `FLATTR-<payout id>`, for the platform's own account (FLATTR_SEPA_NAME,
FLATTR_SEPA_IBAN, FLATTR_SEPA_BIC). sepaxml validates what it writes against the pain.001
schema it ships; `read` takes such a file back (entities and network refused).
"""

import re
from datetime import datetime

from lxml import etree
from schwifty import BIC, IBAN
from schwifty.exceptions import SchwiftyException
from sepaxml import SepaTransfer

from core.errors import InvalidBankAccount, InvalidState
from core.money import CENT_MICROS
from core.payout_methods import BankAccount, PayoutFile, PayoutLine
from core.settings import Settings

NAME = "sepa"
END_TO_END = re.compile(r"FLATTR-([1-9][0-9]{0,17})")
HOLDER_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,70}")
MAX_FILE_BYTES = 20 * 1024 * 1024


def bank_account(iban: str, holder_name: str, bic: str | None = None) -> BankAccount:
    """A SEPA account as a member gives it; InvalidBankAccount says what is wrong."""
    try:
        parsed = IBAN(iban)
    except SchwiftyException as error:
        raise InvalidBankAccount(f"that is not a valid IBAN: {error}") from None
    if not parsed.in_sepa_zone:
        raise InvalidBankAccount(f"{parsed.country_code} IBANs are outside the SEPA zone")
    name = " ".join(holder_name.split())
    if not HOLDER_NAME.fullmatch(name):
        raise InvalidBankAccount("the account holder's name has 1 to 70 characters",
                                 field="name")
    if bic:
        try:
            bic = BIC(bic).compact
        except SchwiftyException as error:
            raise InvalidBankAccount(f"that is not a valid BIC: {error}", field="bic") from None
    return BankAccount(parsed.compact, bic or None, name)


class _Transfer(SepaTransfer):
    """sepaxml's transfer with the message id we give it (it would make a random one)."""

    def __init__(self, config: dict, schema: str, message_id: str) -> None:
        self._wanted_message_id = message_id
        super().__init__(config, schema=schema)

    def _create_header(self) -> None:
        self.msg_id = self._wanted_message_id
        super()._create_header()


class Sepa:
    """The SEPA payout method of one deployment (see core/payout_methods/__init__.py)."""

    name = NAME

    def __init__(self, settings: Settings) -> None:
        if not (settings.sepa_name and settings.sepa_iban):
            raise InvalidState("set FLATTR_SEPA_NAME and FLATTR_SEPA_IBAN, the platform's "
                               "own account, to pay out by SEPA credit transfer")
        if settings.currency != "EUR":
            raise InvalidState(f"SEPA credit transfers are in EUR, not {settings.currency}")
        self.debtor = bank_account(settings.sepa_iban, settings.sepa_name, settings.sepa_bic)
        self.schema = settings.sepa_schema

    def account(self, iban: str, holder_name: str, bic: str | None = None) -> BankAccount:
        return bank_account(iban, holder_name, bic)

    def write(self, message_id: str, lines: list[PayoutLine], now: datetime) -> bytes:
        config = {"name": self.debtor.holder_name, "IBAN": self.debtor.iban, "batch": True,
                  "currency": "EUR"}
        if self.debtor.bic:
            config["BIC"] = self.debtor.bic
        transfer = _Transfer(config, self.schema, message_id)
        for line in lines:
            payment = {
                "name": line.account.holder_name,
                "IBAN": line.account.iban,
                "amount": line.amount_micros // CENT_MICROS,
                "execution_date": now.date(),
                "description": f"Flattr payout {line.payout_id}",
                "endtoend_id": f"FLATTR-{line.payout_id}",
            }
            if line.account.bic:
                payment["BIC"] = line.account.bic
            transfer.add_payment(payment)
        return transfer.export(validate=True, pretty_print=True)

    def read(self, document: bytes) -> PayoutFile:
        return read_pain001(document)


def read_pain001(document: bytes) -> PayoutFile:
    """The message id and the payouts a pain.001 file of ours names."""
    if len(document) > MAX_FILE_BYTES:
        raise InvalidState("the file is too large to be a payout batch of ours")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.fromstring(document, parser)
    except etree.XMLSyntaxError as error:
        raise InvalidState(f"the file is not XML: {error}") from None

    def texts(node, path: str) -> list[str]:
        steps = "/".join(f"*[local-name()='{step}']" for step in path.split("/"))
        return [str(t).strip() for t in node.xpath(f"{steps}/text()")]

    message_ids = texts(root, "CstmrCdtTrfInitn/GrpHdr/MsgId")
    if len(message_ids) != 1:
        raise InvalidState("the file is not a pain.001 credit transfer (no GrpHdr/MsgId)")
    lines = []
    for tx in root.xpath("//*[local-name()='CdtTrfTxInf']"):
        ids, amounts = texts(tx, "PmtId/EndToEndId"), texts(tx, "Amt/InstdAmt")
        ibans, names = texts(tx, "CdtrAcct/Id/IBAN"), texts(tx, "Cdtr/Nm")
        found = END_TO_END.fullmatch(ids[0]) if len(ids) == 1 else None
        if found is None or len(amounts) != 1 or len(ibans) != 1:
            raise InvalidState("a transaction of the file is not a Flattr payout")
        lines.append(PayoutLine(int(found.group(1)), _micros(amounts[0]),
                                BankAccount(ibans[0], None, names[0] if names else "")))
    return PayoutFile(message_ids[0], tuple(lines))


def _micros(amount: str) -> int:
    whole, _, cents = amount.partition(".")
    if not whole.isdigit() or not (cents.isdigit() or cents == "") or len(cents) > 2:
        raise InvalidState(f"{amount[:20]!r} is not an amount in euros and cents")
    return (int(whole) * 100 + int(cents.ljust(2, "0") or 0)) * CENT_MICROS
