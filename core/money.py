"""Money as integer micro-units: 1 unit of currency is 1_000_000 micros.

Amounts never touch floats. They enter as decimal strings (`parse_amount`), are computed on
as plain ints and leave as decimal strings (`format_amount`).
"""

import re
from decimal import Context, Decimal, Inexact, InvalidOperation
from typing import NewType

from core.errors import InvalidAmount, check

Micros = NewType("Micros", int)

MICROS_PER_UNIT = 1_000_000
MAX_AMOUNT_MICROS = 10**15
MICRO_DECIMALS = 6
CENT_MICROS = 10_000
MAX_FEE_BPS = 10_000

# Digits, optionally a dot and more digits. Anything Decimal would also accept (exponents,
# signs, NaN, Infinity, underscores, non-ASCII digits, ".5", "5.") is refused up front.
_AMOUNT_RE = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# Long enough for any acceptable amount even with generous leading/trailing zeros, short enough
# that _EXACT below can never round.
_MAX_AMOUNT_TEXT = 40
_EXACT = Context(prec=_MAX_AMOUNT_TEXT + MICRO_DECIMALS + 4, traps=[Inexact, InvalidOperation])


def parse_amount(text: str) -> int:
    """Parse a non-negative decimal amount such as "2.50" into micros.

    Only `str` is accepted. Floats are inexact, bools are ints in Python, and a bare int is
    ambiguous (units or micros?), so clients must send amounts as decimal strings.
    """
    if not isinstance(text, str):
        raise InvalidAmount(f'amount must be a decimal string such as "2.50", not {text!r}')
    stripped = text.strip()
    if not stripped:
        raise InvalidAmount("amount is empty")
    if len(stripped) > _MAX_AMOUNT_TEXT or not _AMOUNT_RE.fullmatch(stripped):
        raise InvalidAmount(
            f"amount {_shorten(stripped)!r} is not a plain decimal number such as 2 or 2.50"
        )
    micros = _EXACT.multiply(Decimal(stripped), Decimal(MICROS_PER_UNIT))
    if micros != micros.to_integral_value():
        raise InvalidAmount(f"amount {stripped!r} has more than {MICRO_DECIMALS} decimal places")
    if micros > MAX_AMOUNT_MICROS:
        raise InvalidAmount(
            f"amount {stripped!r} is above the maximum of {format_amount(MAX_AMOUNT_MICROS)}"
        )
    return int(micros)


def parse_positive_amount(text: str) -> int:
    """Like `parse_amount`, but zero is refused too."""
    micros = parse_amount(text)
    if micros == 0:
        raise InvalidAmount("amount must be greater than zero")
    return micros


def format_amount(micros: int) -> str:
    """Exact decimal string with 2 to 6 decimals: 2_500_000 -> "2.50", 1 -> "0.000001"."""
    _require_int(micros, "micros")
    sign = "-" if micros < 0 else ""
    units, rest = divmod(abs(micros), MICROS_PER_UNIT)
    decimals = f"{rest:0{MICRO_DECIMALS}d}".rstrip("0").ljust(2, "0")
    return f"{sign}{units}.{decimals}"


CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}


def format_money(micros: int, currency: str) -> str:
    """An amount as members read it: "€2.50", "-$0.000001", "2.50 CHF" (no symbol known)."""
    amount = format_amount(abs(micros))
    sign = "-" if micros < 0 else ""
    symbol = CURRENCY_SYMBOLS.get(currency)
    return f"{sign}{symbol}{amount}" if symbol else f"{sign}{amount} {currency}"


def split_evenly(total: int, parts: int) -> list[int]:
    """Split `total` into `parts` shares differing by at most one micro; the sum is exact."""
    _require_int(total, "total")
    _require_int(parts, "parts")
    check(parts >= 1, f"split_evenly needs at least one part, got {parts}")
    check(total >= 0, f"split_evenly needs a non-negative total, got {total}")
    share, remainder = divmod(total, parts)
    return [share + 1] * remainder + [share] * (parts - remainder)


def fee_of(charge: int, fee_bps: int) -> int:
    """Fee in micros of `fee_bps` basis points on `charge`, rounded down."""
    _require_int(charge, "charge")
    _require_int(fee_bps, "fee_bps")
    check(charge >= 0, f"fee_of needs a non-negative charge, got {charge}")
    check(0 <= fee_bps <= MAX_FEE_BPS, f"fee_bps must be in 0..{MAX_FEE_BPS}, got {fee_bps}")
    return charge * fee_bps // MAX_FEE_BPS


def whole_cents(micros: int) -> int:
    """The largest multiple of one cent (10_000 micros) not above `micros`."""
    _require_int(micros, "micros")
    return micros - micros % CENT_MICROS


def _require_int(value: object, name: str) -> None:
    # bool is an int subclass; True silently meaning one micro would hide a bug.
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")


def _shorten(text: str, limit: int = 50) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
