"""The member's channels on each backend: shown, chosen, and e-mail only where it can go."""

import pytest
from outbox_messages import delivery_states, message, queue

from core import members, outbox
from core.settings import Settings
from gateway.app import create_app


@pytest.fixture
def limits_store() -> None:
    return None  # in-process: these tests are about the settings


@pytest.fixture
async def client(aiohttp_client, database_url, gateway_settings):
    """A deployment that sends e-mail (the worker does; here nothing is sent)."""
    settings = Settings(database_url=database_url, smtp_url="smtp://127.0.0.1:2525")
    return await aiohttp_client(create_app(settings, gateway_settings))


DEFAULTS = {"channels": {"web": True, "telegram": True, "discord": True, "email": False},
            "reminders": True}


async def test_the_defaults_and_a_round_trip(sign_up, engine):
    kai = await sign_up("kai")
    async with engine.begin() as conn:
        await members.link_identity(conn, kai.id, "discord:31337")
    shown = await kai.call("GET", "/me/notifications", status=200)
    assert shown == {"currency": "EUR", **DEFAULTS, "email_address": "kai@example.com",
                     "identities": [{"identity": "discord:31337", "reachable": True,
                                     "unreachable_reason": None}]}
    chosen = await kai.call("PUT", "/me/notifications", json={
        "email": True, "discord": False, "reminders": False}, status=200)
    assert chosen["channels"] == {"web": True, "telegram": True, "discord": False,
                                  "email": True}
    assert chosen["reminders"] is False
    assert await kai.call("GET", "/me/notifications") == chosen
    # Only what is named changes.
    again = await kai.call("PUT", "/me/notifications", json={"telegram": False}, status=200)
    assert again["channels"] == {**chosen["channels"], "telegram": False}
    assert (await kai.call("PUT", "/me/notifications", json={}, status=200)) == again
    # The choice decides the deliveries: e-mail, and no Discord DM.
    await queue(engine, [message(kai.id)])
    assert list((await delivery_states(engine)).values()) == ["pending"]
    async with engine.connect() as conn:
        (made,) = await outbox.deliveries(conn)
    assert made["channel"] == "email" and made["address"] == "kai@example.com"


async def test_e_mail_needs_an_address(client, privileged):
    _, token = await privileged("noaddress", "read,account")
    auth = {"Authorization": f"Bearer {token}"}
    response = await client.put("/api/v1/me/notifications", json={"email": True}, headers=auth)
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "no_email_address"
    shown = await (await client.get("/api/v1/me/notifications", headers=auth)).json()
    assert shown["channels"]["email"] is False and shown["email_address"] is None
    turned_off = await client.put("/api/v1/me/notifications", json={"email": False},
                                  headers=auth)
    assert turned_off.status == 200


async def test_e_mail_needs_a_deployment_that_sends_it(make_client, sign_up):
    plain = await make_client()  # no FLATTR_SMTP_URL
    lou = await sign_up("lou", on=plain)
    refused = await lou.call("PUT", "/me/notifications", json={"email": True}, status=422)
    assert refused["error"]["code"] == "email_not_configured"
    assert (await lou.call("GET", "/me/notifications"))["channels"]["email"] is False
    await lou.call("PUT", "/me/notifications", json={"reminders": False}, status=200)


async def test_turning_a_chat_on_again_makes_its_identity_reachable(sign_up, engine):
    mo = await sign_up("mo")
    async with engine.begin() as conn:
        await members.link_identity(conn, mo.id, "telegram:9")
        await outbox.mark_unreachable(conn, "telegram", "telegram:9", "blocked")
    shown = await mo.call("GET", "/me/notifications")
    assert shown["identities"][0]["reachable"] is False
    back = await mo.call("PUT", "/me/notifications", json={"telegram": True}, status=200)
    assert back["identities"] == [{"identity": "telegram:9", "reachable": True,
                                   "unreachable_reason": None}]


async def test_choosing_needs_the_account_scope(sign_up):
    ned = await sign_up("ned", scopes=("read", "flattr"))
    assert (await ned.call("GET", "/me/notifications", status=200))["reminders"] is True
    refused = await ned.call("PUT", "/me/notifications", json={"email": False}, status=403)
    assert refused["error"]["code"] == "insufficient_scope"


@pytest.mark.parametrize("body", [{"email": "yes"}, {"telegram": 1}, {"sms": True},
                                  {"web": False}, {"reminders": None, "extra": 1}, [True]])
async def test_a_bad_body_is_a_400(sign_up, body):
    oz = await sign_up("oz")
    answer = await oz.call("PUT", "/me/notifications", json=body, status=400)
    assert answer["error"]["code"] == "invalid_request"


async def test_what_get_shows_can_be_changed_and_put_back(sign_up, engine):
    pia = await sign_up("pia")
    async with engine.begin() as conn:
        await members.link_identity(conn, pia.id, "telegram:7")
    shown = await pia.call("GET", "/me/notifications", status=200)
    shown["channels"].update(email=True, telegram=False)
    shown["reminders"] = False
    shown["email_address"] = "elsewhere@example.com"  # read-only: ignored
    chosen = await pia.call("PUT", "/me/notifications", json=shown, status=200)
    assert chosen == {**shown, "email_address": "pia@example.com"}
    assert await pia.call("GET", "/me/notifications") == chosen
    # Nested, only what is named changes; the flat shape still works beside it.
    partly = await pia.call("PUT", "/me/notifications", json={"channels": {"discord": False}},
                            status=200)
    assert partly["channels"] == {"web": True, "telegram": False, "discord": False,
                                  "email": True}
    flat = await pia.call("PUT", "/me/notifications", json={"telegram": True}, status=200)
    assert flat["channels"]["telegram"] is True and flat["reminders"] is False


@pytest.mark.parametrize("body", [
    {"channels": {"email": True}, "email": True},  # both shapes at once
    {"channels": {"email": True, "web": False}},  # the web inbox is always on
    {"channels": {"email": True, "sms": True}},
    {"channels": {"email": "yes"}},
    {"channels": [True]},
    {"channels": {"email": True}, "identities": "none"},
])
async def test_a_bad_nested_body_is_a_400_and_changes_nothing(sign_up, body):
    quinn = await sign_up("quinn")
    before = await quinn.call("GET", "/me/notifications")
    answer = await quinn.call("PUT", "/me/notifications", json=body, status=400)
    assert answer["error"]["code"] == "invalid_request"
    assert await quinn.call("GET", "/me/notifications") == before
