"""The channels a member's messages go to (the web inbox always)."""

from core import notifications
from gateway.api import Api, Call
from gateway.errors import ApiError
from gateway.schemas import NotificationChoice

api = Api()


def _settings_json(chosen: dict) -> dict:
    return {
        "channels": {"web": True, **{name: chosen[name]
                                     for name in ("telegram", "discord", "email")}},
        "reminders": chosen["reminders"],
        "email_address": chosen["email_address"],
        "identities": chosen["identities"],
    }


@api.route("GET", "/me/notifications", summary="Where the member's messages go", scope="read")
async def show(call: Call):
    return _settings_json(await notifications.settings_of(call.conn, call.member_id))


CHOOSING = """Name only what changes, flat (`{"email": true, "reminders": false}`) or as GET
shows it (`{"channels": {"email": true}, "reminders": false}`), not both; what is left out
stays as it is. A client may GET, change and PUT back the whole document: its read-only
fields (`currency`, `email_address`, `identities`) are ignored, and `channels.web` may only
be true (the web inbox is always on)."""


@api.route("PUT", "/me/notifications", summary="Turn channels (and reminders) on or off",
           scope="account", body=NotificationChoice, description=CHOOSING,
           errors=("no_email_address", "email_not_configured"))
async def choose(call: Call):
    changes = call.body.changes()
    if changes.get("email") and call.settings.smtp_url is None:
        raise ApiError("email_not_configured",
                       "this deployment sends no e-mail (FLATTR_SMTP_URL is not set)")
    return _settings_json(await notifications.choose(call.conn, call.member_id, changes))
