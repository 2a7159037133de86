"""The one gateway client of the chat bots: HTTP only, as the browser extension talks.

Every call carries the bot's token; a call made for a chat user also carries
`Flattr-Identity: <network>:<user id>`. Connection errors, timeouts and 5xx answers are
retried with exponential back-off; a 429 waits its `Retry-After` (when short enough) and
tries again. Every flattr carries an `Idempotency-Key`, so a flattr retried after an answer
was lost is still one flattr. The answers come back as small typed records; an error answer
raises `GatewayError` with the gateway's stable code, and a gateway that stays unreachable
raises `GatewayUnavailable`.
"""

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp

IDENTITY_HEADER = "Flattr-Identity"
RETRIED_STATUSES = frozenset({500, 502, 503, 504})


class GatewayError(Exception):
    """The gateway answered with an error: `code` is its stable code (`own_thing`, …)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class GatewayUnavailable(GatewayError):
    """No answer, or only 5xx answers, after every try; `last_code` is the code of the last
    such answer (`payment_provider_unavailable`: the gateway is up, Stripe is not)."""

    def __init__(self, message: str, status: int = 0, last_code: str | None = None) -> None:
        super().__init__(status, "unavailable", message)
        self.last_code = last_code


class RateLimited(GatewayError):
    """A 429 whose Retry-After was longer than the client waits (or the tries ran out)."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(429, "rate_limited", message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Member:
    id: int
    handle: str


@dataclass(frozen=True)
class Flattred:
    created: bool  # False: flattred before this month, the same flattr answered again
    id: int
    thing: str
    owner: str | None  # the owner's handle, None while the thing is held


@dataclass(frozen=True)
class TakenBack:
    id: int
    thing: str


@dataclass(frozen=True)
class Month:
    """GET /me: balances (decimal strings in `currency`), budget and this month so far."""

    handle: str
    currency: str
    giving: str
    revenue: str
    held_for_you: str
    budget: str | None
    minimum_budget: str
    period: str
    flattr_count: int
    funded: bool
    estimated_share: str | None
    received_flattrs: int
    received_members: int


@dataclass(frozen=True)
class Funding:
    """GET /fundings: whether a card top-up can be opened here, its limits, the debt."""

    card_funding: bool
    minimum: str | None  # None without card funding
    maximum: str | None
    debt: str  # what refunds or disputes left owing: no flattrs while above zero
    currency: str


@dataclass(frozen=True)
class TopUp:
    """A card top-up opened: `total` (`amount` and the card fee) is paid on `checkout_url`;
    `amount` reaches the giving balance once Stripe confirms the payment."""

    checkout_url: str
    amount: str
    fee: str
    total: str
    currency: str


@dataclass(frozen=True)
class ChatSettings:
    chat: str
    emoji: str | None  # None: the bot's default
    owner: str | None  # the chat identity who claimed the chat
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Waiting:
    identity: str
    period: str
    things: int
    flattrs: int
    linked: bool


@dataclass(frozen=True)
class ThingCount:
    key: str
    owner: str | None
    count_this_period: int
    count_total: int


@dataclass(frozen=True)
class InboxMessage:
    """A message of the member's web inbox (a monthly summary, a reminder, …)."""

    id: int
    kind: str
    period: str | None
    subject: str
    text: str
    read: bool


@dataclass(frozen=True)
class SignInLink:
    """A link that signs the member in on the web pages: it works once, until `expires_at`."""

    url: str
    expires_at: datetime

    def minutes_left(self, now: datetime | None = None) -> int:
        seconds = (self.expires_at - (now or datetime.now(UTC))).total_seconds()
        return max(1, round(seconds / 60))


@dataclass(frozen=True)
class Leased:
    """An outbox message leased to this bot: send `text` to `chat_id`, then ack `id`."""

    id: int
    identity: str
    chat_id: str
    kind: str
    period: str | None
    subject: str
    text: str
    attempt: int


LEASE_MARGIN_SECONDS = 10.0  # a lease's try is given its wait and this much more


@dataclass(frozen=True)
class Retrying:
    """How hard the client tries: `attempts` in all, waits doubling from `backoff_seconds`."""

    attempts: int = 4
    backoff_seconds: float = 0.25
    backoff_max_seconds: float = 4.0
    retry_after_max_seconds: float = 10.0  # a longer 429 is raised as RateLimited
    timeout_seconds: float = 15.0


class GatewayClient:
    """`async with GatewayClient(url, token) as gateway:`; one per bot process."""

    def __init__(self, base_url: str, token: str, *, retrying: Retrying | None = None,
                 user_agent: str = "flattr-bot") -> None:
        self.api = base_url.rstrip("/") + "/api/v1"
        self.retrying = retrying or Retrying()
        self._headers = {"Authorization": f"Bearer {token}", "User-Agent": user_agent}
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "GatewayClient":
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _session_now(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(total=self.retrying.timeout_seconds)
            self._session = aiohttp.ClientSession(headers=self._headers, timeout=timeout)
        return self._session

    async def call(self, method: str, path: str, *, identity: str | None = None,
                   body: dict | None = None, query: dict | None = None,
                   idempotency_key: str | None = None,
                   timeout_seconds: float | None = None) -> dict[str, Any]:
        """One API call with the retries; the answer's JSON object, or an exception. Each try
        is given `timeout_seconds` (default: the client's)."""
        headers = {}
        if identity is not None:
            headers[IDENTITY_HEADER] = identity
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        retrying = self.retrying
        wait = retrying.backoff_seconds
        problem = "no try made"
        last_code = None
        timeout = (None if timeout_seconds is None
                   else aiohttp.ClientTimeout(total=timeout_seconds))
        for attempt in range(1, retrying.attempts + 1):
            last = attempt == retrying.attempts
            try:
                async with self._session_now().request(
                    method, self.api + path, json=body, params=query, headers=headers,
                    timeout=timeout
                ) as response:
                    status = response.status
                    answer = await _json_of(response)
                    retry_after = _seconds(response.headers.get("Retry-After"))
            except (aiohttp.ClientError, TimeoutError) as error:
                problem = f"the gateway did not answer ({type(error).__name__}: {error})"
            else:
                if status < 400:
                    return answer
                code, message = _error_of(answer, status)
                if status == 429:
                    pause = retry_after if retry_after is not None else wait
                    if last or pause > retrying.retry_after_max_seconds:
                        raise RateLimited(message, pause)
                    await asyncio.sleep(pause)
                    continue
                if status not in RETRIED_STATUSES:
                    raise GatewayError(status, code, message)
                problem = f"the gateway answered {status} {code}: {message}"
                last_code = code
            if last:
                break
            await asyncio.sleep(wait)
            wait = min(wait * 2, retrying.backoff_max_seconds)
        raise GatewayUnavailable(problem, last_code=last_code)

    # --- members and identities ----------------------------------------------------------

    async def create_member(self, identity: str) -> tuple[Member, bool]:
        """The member of this chat identity, made when there was none: (member, created)."""
        answer = await self.call("POST", "/bot/members", body={"identity": identity})
        return _member(answer["member"]), answer["created"]

    async def link(self, code: str, identity: str) -> Member:
        answer = await self.call("POST", "/bot/link", body={"code": code, "identity": identity})
        return _member(answer["member"])

    async def identities(self, identity: str) -> list[dict[str, Any]]:
        return (await self.call("GET", "/identities", identity=identity))["identities"]

    async def unlink(self, identity: str) -> None:
        """Unlink this chat identity from its member."""
        for linked in await self.identities(identity):
            if linked["identity"] == identity:
                await self.call("DELETE", f"/identities/{linked['id']}", identity=identity)
                return
        raise GatewayError(404, "not_found", f"{identity} is not linked")

    async def sign_in_link(self, identity: str) -> SignInLink:
        """A one-time link to the web pages for the member who linked this chat identity;
        send it privately. `identity_not_linked` when there is none."""
        answer = await self.call("POST", "/bot/sign-in-links", body={"identity": identity})
        return SignInLink(answer["url"], datetime.fromisoformat(answer["expires_at"]))

    async def month(self, identity: str) -> Month:
        answer = await self.call("GET", "/me", identity=identity)
        balances, received = answer["balances"], answer.get("received") or {}
        return Month(
            handle=answer["member"]["handle"], currency=answer.get("currency", ""),
            giving=balances["giving"], revenue=balances["revenue"],
            held_for_you=balances["held_for_you"], budget=answer["budget"],
            minimum_budget=answer["minimum_budget"], period=answer["period"],
            flattr_count=answer["flattr_count"], funded=answer["funded"],
            estimated_share=answer["estimated_share"],
            received_flattrs=received.get("flattrs", 0),
            received_members=received.get("members", 0),
        )

    async def set_budget(self, identity: str, amount: str) -> str:
        answer = await self.call("PUT", "/me/budget", identity=identity, body={"amount": amount})
        return answer["budget"]

    async def funding(self, identity: str) -> Funding:
        answer = await self.call("GET", "/fundings", identity=identity)
        limits = answer.get("limits") or {}
        return Funding(bool(answer["card_funding"]), limits.get("minimum"),
                       limits.get("maximum"), answer["debt"], answer.get("currency", ""))

    async def top_up(self, identity: str, amount: str, *, idempotency_key: str) -> TopUp:
        """Open a card payment (Stripe Checkout) of `amount` for the member; the same
        `idempotency_key` answers the same payment page again."""
        answer = await self.call("POST", "/fundings", identity=identity,
                                 body={"amount": amount}, idempotency_key=idempotency_key)
        return TopUp(answer["checkout_url"], answer["amount"], answer["fee_estimate"],
                     answer["total"], answer.get("currency", ""))

    async def messages(self, identity: str, *, limit: int = 20) -> list[InboxMessage]:
        """The member's web inbox, newest first: at most `limit` (1 to 100) messages."""
        answer = await self.call("GET", "/messages", identity=identity, query={"limit": limit})
        return [InboxMessage(m["id"], m["kind"], m["period"], m["subject"], m["text"],
                             m["read"]) for m in answer["messages"]]

    # --- flattrs -------------------------------------------------------------------------

    async def flattr(self, identity: str, *, thing: str | None = None, url: str | None = None,
                     author: str | None = None, idempotency_key: str | None = None) -> Flattred:
        """Flattr a chat post (`thing`, with its `author`) or a web page (`url`). Give the
        same `idempotency_key` when trying again later: the gateway answers the first."""
        body: dict[str, Any] = {"thing": thing} if thing is not None else {"url": url}
        if author is not None:
            body["author"] = author
        answer = await self.call("POST", "/flattrs", identity=identity, body=body,
                                 idempotency_key=idempotency_key or uuid.uuid4().hex)
        made = answer["flattr"]
        return Flattred(answer["created"], made["id"], made["thing"]["key"],
                        made["thing"]["owner"])

    async def take_back(self, identity: str, *, thing: str | None = None,
                        url: str | None = None) -> TakenBack:
        query = {"thing": thing} if thing is not None else {"url": url}
        deleted = (await self.call("DELETE", "/flattrs", identity=identity, query=query))[
            "deleted"]
        return TakenBack(deleted["id"], deleted["thing"])

    async def thing(self, thing: str) -> ThingCount:
        answer = await self.call("GET", "/things", query={"thing": thing})
        return ThingCount(answer["key"], answer["owner"], answer["count_this_period"],
                          answer["count_total"])

    # --- the bot's own errands -----------------------------------------------------------

    async def chat_settings(self, chat: str) -> ChatSettings:
        return _chat(await self.call("GET", f"/bot/chats/{chat}"))

    async def change_chat_settings(self, chat: str, **changes: Any) -> ChatSettings:
        return _chat(await self.call("PUT", f"/bot/chats/{chat}", body=changes))

    async def waiting(self, identity: str) -> Waiting:
        answer = await self.call("GET", "/bot/waiting", query={"identity": identity})
        return Waiting(answer["identity"], answer["period"], answer["things"],
                       answer["flattrs"], answer["linked"])

    async def lease(self, platform: str, *, max_messages: int = 50, lease_seconds: int = 60,
                    wait_seconds: int = 0) -> list[Leased]:
        # The gateway holds the answer up to `wait_seconds`: the try is given 10 s more.
        answer = await self.call("POST", "/bot/outbox/lease", body={
            "platform": platform, "max": max_messages, "lease_seconds": lease_seconds,
            "wait": wait_seconds}, timeout_seconds=max(self.retrying.timeout_seconds,
                                                      wait_seconds + LEASE_MARGIN_SECONDS))
        return [Leased(m["id"], m["identity"], m["chat_id"], m["kind"], m["period"],
                       m["subject"], m["text"], m["attempt"]) for m in answer["messages"]]

    async def ack(self, delivery_id: int) -> None:
        await self.call("POST", f"/bot/outbox/{delivery_id}/ack")

    async def fail(self, delivery_id: int, *, retry_after: float | None = None,
                   permanent: bool = False, reason: str | None = None) -> str:
        body: dict[str, Any] = {}
        if retry_after is not None:
            body["retry_after"] = max(0, round(retry_after + 0.499))
        if permanent:
            body["permanent"] = True
        if reason:
            body["reason"] = reason[:500]
        return (await self.call("POST", f"/bot/outbox/{delivery_id}/fail", body=body))["state"]


async def _json_of(response: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        found = await response.json(content_type=None)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _seconds(header: str | None) -> float | None:
    try:
        return max(0.0, float(header)) if header is not None else None
    except ValueError:
        return None


def _error_of(answer: dict[str, Any], status: int) -> tuple[str, str]:
    error = answer.get("error")
    if isinstance(error, dict):
        return str(error.get("code", "error")), str(error.get("message", ""))
    return "error", f"HTTP {status}"


def _member(found: dict[str, Any]) -> Member:
    return Member(found["id"], found["handle"])


def _chat(found: dict[str, Any]) -> ChatSettings:
    return ChatSettings(found["chat"], found["emoji"], found["owner"],
                        tuple(found.get("channels") or ()))
