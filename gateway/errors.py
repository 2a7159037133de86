"""How domain errors become HTTP answers: one shape, stable codes, a status per code."""

from aiohttp import web

from core import errors as domain
from gateway.json import dumps

STATUS_OF_CODE: dict[str, int] = {
    "bad_request": 400,  # not HTTP we can read; the server's parse errors have 414, 431, 501 too
    "invalid_request": 400,
    "invalid_json": 400,
    "invalid_amount": 400,
    "invalid_period": 400,
    "invalid_url": 400,
    "invalid_thing": 400,
    "invalid_handle": 400,
    "invalid_identity": 400,
    "invalid_host": 400,
    "invalid_password": 400,
    "invalid_email": 400,
    "invalid_scope": 400,
    "invalid_code": 400,
    "invalid_channel": 400,
    "invalid_chat": 400,
    "invalid_bank_account": 400,
    "invalid_signature": 400,
    "invalid_event": 400,
    "unauthorized": 401,
    "debt_outstanding": 402,
    "invalid_credentials": 401,
    "insufficient_scope": 403,
    "own_thing": 403,
    "identity_not_linked": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "request_timeout": 408,
    "handle_taken": 409,
    "identity_taken": 409,
    "claim_taken": 409,
    "idempotency_conflict": 409,
    # The CLI's (a payout file): never answered by a route, but every code has a status.
    "file_exists": 409,
    "cannot_write_file": 409,
    "period_closed": 409,
    "invalid_state": 409,
    "funding_unavailable": 409,
    "settlement_running": 409,
    "period_out_of_order": 409,
    "payload_too_large": 413,
    "unsupported_media_type": 415,
    "budget_below_minimum": 422,
    "insufficient_funds": 422,
    "below_payout_threshold": 422,
    "claim_not_proven": 422,
    "no_email_address": 422,
    "email_not_configured": 422,
    "rate_limited": 429,
    "internal_error": 500,
    "database_unavailable": 503,
    "busy": 503,
    "payment_provider_unavailable": 503,
}


class ApiError(domain.DomainError):
    """An error that belongs to the HTTP surface (authentication, limits, bad JSON)."""

    def __init__(self, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.headers = headers or {}


def error_response(code: str, message: str, headers: dict[str, str] | None = None, *,
                   status: int | None = None) -> web.Response:
    """The one-shape answer; `status` only where one code covers several (HTTP parse errors)."""
    return web.Response(
        status=status or STATUS_OF_CODE.get(code, 400),
        body=dumps({"error": {"code": code, "message": message}}),
        content_type="application/json",
        headers=headers,
    )


def domain_codes_without_status() -> set[str]:
    """Checked by a test: every code a core error can carry maps to a status."""
    return {c.code for c in _subclasses(domain.DomainError)} - STATUS_OF_CODE.keys()


def _subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= _subclasses(sub)
    return {c for c in found if c is not ApiError}
