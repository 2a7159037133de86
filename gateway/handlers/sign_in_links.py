"""One-time sign-in links to the web pages, made by a bot for a member made in chat."""

from datetime import timedelta

from core import web_sessions
from gateway.api import Api, Call
from gateway.handlers.bot import only_the_bot_itself
from gateway.pages.visits import pages_settings_key
from gateway.present import when
from gateway.schemas import BotMember

api = Api()


@api.route("POST", "/bot/sign-in-links", summary="A one-time link that signs a chat user in "
           "on the web", scope="bot", body=BotMember, status=201,
           errors=("invalid_identity", "identity_not_linked"),
           description="For the bots' `/web` command: `url` opens a page whose one button "
                       "signs in the member who linked `identity` (a member made in chat has "
                       "no password; there they may set one and an e-mail address). The link "
                       "works once, until `expires_at` (15 minutes by default, "
                       "FLATTR_WEB_SIGN_IN_LINK_MINUTES). Send it privately. 403 "
                       "`identity_not_linked` when no member linked the identity: create one "
                       "with POST /bot/members first.")
async def make_sign_in_link(call: Call):
    only_the_bot_itself(call)
    minutes = call.request.app[pages_settings_key].sign_in_link_minutes
    made = await web_sessions.make_sign_in_link(call.conn, call.body.identity,
                                                timedelta(minutes=minutes))
    return {"url": f"{call.settings.public_url}/sign-in/link/{made.secret}",
            "expires_at": when(made.expires_at)}
