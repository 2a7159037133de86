"""What the Telegram bot's calls send the gateway, malformed or out of turn: a clear 4xx
each, never a 500 (the reviewer's probe of issue 18)."""

import aiohttp


async def test_bad_inputs_get_a_4xx_never_a_500(gateway_server, bot_token, web_member):
    m = await web_member("pia", identity="telegram:5")
    base = str(gateway_server.make_url("/api/v1"))
    bot = {"Authorization": f"Bearer {bot_token}"}
    actor = {**bot, "Flattr-Identity": "telegram:5"}
    web = {"Authorization": f"Bearer {m.token}"}
    cases = [
        ("DELETE", "/flattrs?thing=telegram:-100123/45", actor, None),
        ("DELETE", "/flattrs?thing=telegram:-100123/45", web, None),
        ("DELETE", "/flattrs?thing=telegram:abc", actor, None),
        ("DELETE", "/flattrs?thing=telegram:-0/1", actor, None),
        ("DELETE", "/flattrs?thing=", actor, None),
        ("DELETE", "/flattrs?thing=x&url=https://a.b/", actor, None),
        ("DELETE", "/flattrs?thing=telegram:1/2&thing=telegram:1/3", actor, None),
        ("DELETE", "/flattrs?url=javascript:alert(1)", actor, None),
        ("DELETE", "/flattrs?thing=" + "9" * 5000, actor, None),
        ("DELETE", "/flattrs?thing=telegram:-100123/45%00", actor, None),
        ("DELETE", "/flattrs", actor, None),
        ("POST", "/flattrs", actor, {"thing": "telegram:-1/2", "author": "telegram:abc"}),
        ("POST", "/flattrs", actor, {"thing": "telegram:-1/2", "author": 5}),
        ("POST", "/flattrs", actor, {"thing": "telegram:-1/3", "author": "telegram:5"}),
        ("GET", "/bot/chats/telegram:abc", bot, None),
        ("GET", "/bot/chats/telegram:-100%2F1", bot, None),
        ("GET", "/bot/chats/" + "1" * 3000, bot, None),
        ("PUT", "/bot/chats/telegram:-100", bot, {"emoji": ["x"]}),
        ("PUT", "/bot/chats/telegram:-100", bot, {"emoji": ""}),
        ("PUT", "/bot/chats/telegram:-100", bot, {"emoji": "a\u0000"}),
        ("PUT", "/bot/chats/telegram:-100", bot, {"owner": 5}),
        ("PUT", "/bot/chats/telegram:-100", bot, {"owner": "discord:5"}),
        ("PUT", "/bot/chats/telegram:-100", bot, {"channels": "1"}),
        ("PUT", "/bot/chats/telegram:-100", bot, {"channels": [1]}),
        ("PUT", "/bot/chats/telegram:-100", bot, {"nope": 1}),
        ("PUT", "/bot/chats/telegram:-100", bot, [1]),
        ("PUT", "/bot/chats/telegram:-100", bot, {"chat": "telegram:-101"}),
        ("PUT", "/bot/chats/telegram:-100", bot, {"emoji": "\ud83d"}),
        ("PUT", "/bot/chats/telegram:-100", actor, {"emoji": "x"}),
        ("GET", "/bot/waiting?identity=bad", bot, None),
        ("GET", "/bot/waiting", bot, None),
        ("GET", "/bot/waiting?identity=telegram:5&identity=telegram:6", bot, None),
        ("POST", "/bot/members", bot, {"identity": "telegram:" + "9" * 40}),
        ("POST", "/bot/members", bot, {"identity": "telegram:-5"}),
        ("POST", "/bot/members", bot, {"identity": "discord:0"}),
        ("POST", "/bot/link", bot, {"code": "x" * 1000, "identity": "telegram:7"}),
    ]
    async with aiohttp.ClientSession() as s:
        for method, path, headers, body in cases:
            kw = {"json": body} if body is not None else {}
            if body == {"emoji": "\ud83d"}:  # a lone surrogate: not JSON Python would send
                kw = {"data": b'{"emoji": "\\ud83d"}',
                      "headers": {**headers, "Content-Type": "application/json"}}
            else:
                kw["headers"] = headers
            async with s.request(method, base + path, **kw) as r:
                answer = await r.json()
                assert 400 <= r.status < 500, (method, path, body, r.status, answer)
                assert answer["error"]["code"] and answer["error"]["message"]
