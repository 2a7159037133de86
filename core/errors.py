"""Domain errors: each has a stable snake_case code that clients can rely on."""


class DomainError(Exception):
    """A rule of the domain refused the request; nothing was changed."""

    code = "invalid_request"
    exit_code = 1  # of the `flattr` command it stops; 2 for a usage error

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidAmount(DomainError):
    code = "invalid_amount"


class InvalidPeriod(DomainError):
    code = "invalid_period"


class InvalidUrl(DomainError):
    code = "invalid_url"


class InvalidThing(DomainError):
    code = "invalid_thing"


class InvalidHandle(DomainError):
    code = "invalid_handle"


class InvalidIdentity(DomainError):
    code = "invalid_identity"


class InvalidHost(DomainError):
    code = "invalid_host"


class InvalidChat(DomainError):
    code = "invalid_chat"


class NotFound(DomainError):
    code = "not_found"


class HandleTaken(DomainError):
    code = "handle_taken"


class IdentityTaken(DomainError):
    code = "identity_taken"


class OwnThing(DomainError):
    code = "own_thing"


class PeriodClosed(DomainError):
    code = "period_closed"


class BudgetBelowMinimum(DomainError):
    code = "budget_below_minimum"


class InsufficientFunds(DomainError):
    code = "insufficient_funds"


class BelowPayoutThreshold(DomainError):
    code = "below_payout_threshold"


class IdempotencyConflict(DomainError):
    code = "idempotency_conflict"


class InvalidState(DomainError):
    code = "invalid_state"


class PayoutWithTheBank(InvalidState):
    """A payout sent in a batch is the bank's to answer, not an admin's (`flattr`: exit 2)."""

    exit_code = 2


class SettlementRunning(DomainError):
    code = "settlement_running"


class PeriodOutOfOrder(DomainError):
    code = "period_out_of_order"


class InvariantBroken(Exception):
    """An internal invariant does not hold: a bug, never the user's fault."""


def check(condition: object, message: str) -> None:
    """Assert an invariant; unlike `assert`, it still raises under `python -O`."""
    if not condition:
        raise InvariantBroken(message)


class InvalidPassword(DomainError):
    code = "invalid_password"


class InvalidEmail(DomainError):
    code = "invalid_email"


class ClaimTaken(DomainError):
    code = "claim_taken"


class InvalidScope(DomainError):
    code = "invalid_scope"


class InsufficientScope(DomainError):
    code = "insufficient_scope"


class InvalidCode(DomainError):
    code = "invalid_code"


class IdentityNotLinked(DomainError):
    code = "identity_not_linked"


class InvalidCredentials(DomainError):
    code = "invalid_credentials"


class ClaimNotProven(DomainError):
    code = "claim_not_proven"


class InDebt(DomainError):
    """A refund or dispute left the member owing money: no new flattrs until a funding
    has repaid it."""

    code = "debt_outstanding"


class FundingUnavailable(DomainError):
    """This deployment offers no way to pay in by card (nothing is configured)."""

    code = "funding_unavailable"


class PaymentProviderUnavailable(DomainError):
    """The payment provider could not be reached or refused: try again later."""

    code = "payment_provider_unavailable"


class InvalidBankAccount(DomainError):
    code = "invalid_bank_account"

    def __init__(self, message: str, field: str = "iban") -> None:
        super().__init__(message)
        self.field = field  # what is wrong: "iban", "name" or "bic"
