"""What the bot says: the help, and a gateway error put the way a chat user reads it."""

from bots.client import GatewayError, GatewayUnavailable, RateLimited

COMMANDS = (
    ("start", "Make your Flattr account, or link it (from the web's link)"),
    ("link", "Link this Telegram account: /link CODE"),
    ("unlink", "Unlink this Telegram account from Flattr"),
    ("web", "A one-time link that signs you in on the website"),
    ("flattr", "Flattr a web page: /flattr URL (or reply /flattr to a post)"),
    ("unflattr", "Take a flattr back this month: /unflattr URL"),
    ("balance", "Your balances and budget"),
    ("budget", "Show or set your monthly budget: /budget 5"),
    ("topup", "Add funds by card: /topup 10 (the card fee is shown first)"),
    ("stats", "This month: your flattrs, their worth, what you received"),
    ("settings", "Chat admins: the flattr emoji of this chat: /settings 🔥"),
    ("claim", "Own a channel's posts: /claim @channel (you are its admin)"),
    ("help", "What the bot does"),
)

HELP = """\
Flattr shares your monthly budget among everything you liked this month.

In groups where I am an administrator, react to a post with the chat's flattr emoji \
({emoji} unless its admins chose another) to flattr it; take the reaction away to take \
the flattr back. In channels, press the Flattr button under a post.

{commands}

Balances and errors are only ever told here, in our private chat."""

UNREACHABLE = "Flattr can't be reached right now."


def help_text(emoji: str) -> str:
    commands = "\n".join(f"/{name} - {about}" for name, about in COMMANDS)
    return HELP.format(emoji=emoji, commands=commands)


def explain(error: GatewayError, start_link: str) -> str:
    """The gateway's refusal, as a sentence for the user."""
    if isinstance(error, GatewayUnavailable):
        return f"{UNREACHABLE} Try again in a minute."
    if isinstance(error, RateLimited):
        return f"That was a lot at once: try again in {max(1, round(error.retry_after))} s."
    if error.code == "identity_not_linked":
        return ("This Telegram account has no Flattr account yet. Send /start here to make "
                f"one, or /link CODE with a code from the website. {start_link}")
    if error.code == "own_thing":
        return "That is yours: you can't flattr your own things."
    if error.code == "period_closed":
        return "This month is being settled: that can't change any more."
    if error.code == "debt_outstanding":
        return ("You owe money after a card refund or dispute: /topup to repay it, then "
                "flattr again.")
    if error.code == "insufficient_scope":
        return "The bot may not do that for you: do it on the website."
    return error.message or error.code
