"""What the bot says: a gateway error put the way a Discord user reads it, and the rest."""

from bots.client import GatewayError, GatewayUnavailable, RateLimited

UNREACHABLE = "Flattr can't be reached right now."
HOW_TO_START = ("use /signup to make a Flattr account for this Discord account, or /link CODE "
                "with a code from the website (Linked chats) to link yours")
NOT_LINKED = f"This Discord account has no Flattr account yet: {HOW_TO_START}."
MAX_MESSAGE = 2000  # characters of a Discord message
SAID = {  # the gateway's stable codes
    "identity_not_linked": NOT_LINKED,
    "own_thing": "That is yours: you can't flattr your own things.",
    "period_closed": "This month is being settled: that can't change any more.",
    "insufficient_scope": "The bot may not do that for you: do it on the website.",
    "debt_outstanding": "You owe money after a card refund or dispute: /topup to repay it, "
                        "then flattr again.",
}


def explain(error: GatewayError) -> str:
    """The gateway's refusal, as a sentence for the user."""
    if isinstance(error, GatewayUnavailable):
        return f"{UNREACHABLE} Nothing changed: try again in a minute."
    if isinstance(error, RateLimited):
        return f"That was a lot at once: try again in {max(1, round(error.retry_after))} s."
    return SAID.get(error.code) or error.message or error.code


def clipped(text: str, limit: int = MAX_MESSAGE) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"
