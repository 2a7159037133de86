"""Flattring: the click path."""

from core import flattrs
from core.errors import DomainError
from core.flattr_batch import FlattrRequest
from core.periods import Period
from core.thing_keys import parse_thing_key
from gateway import keys
from gateway.api import Api, Call
from gateway.present import when
from gateway.schemas import FlattrBody, PeriodQuery, ThingQuery

api = Api()


def flattr_json(flattr: flattrs.Flattr, thing) -> dict:
    return {
        "id": flattr.id, "period": flattr.period, "created_at": when(flattr.created_at),
        "source": flattr.source,
        "thing": {"key": thing.key, "url": thing.url, "owner": thing.owner_handle},
    }


@api.route("POST", "/flattrs", summary="Flattr a URL or a thing (201 new, 200 already)",
           scope="flattr", body=FlattrBody, status=201, money=True, batched=True,
           errors=("invalid_url", "invalid_thing", "own_thing", "period_closed",
                   "identity_not_linked", "debt_outstanding"))
async def create_flattr(call: Call):
    body: FlattrBody = call.body
    author = body.author if call.principal.acting_for else None
    acting_for = call.principal.acting_for
    source = acting_for.split(":")[0] if acting_for else (body.source or "web")
    if call.conn is None and author is None:
        request = FlattrRequest(call.member_id, parse_thing_key(body.url or body.thing), source)
        done = await call.request.app[keys.batcher_key].submit(request)
        if isinstance(done, DomainError):
            raise done
    elif call.conn is None:  # a chat post with its author: the single-flattr path
        async with call.request.app[keys.engine_key].begin() as conn:
            done = await flattrs.flattr(conn, call.member_id, body.url or body.thing,
                                        author_identity=author, source=source)
    else:
        done = await flattrs.flattr(call.conn, call.member_id, body.url or body.thing,
                                    author_identity=author, source=source)
    if done.created:
        call.request.app[keys.metrics_key].flattrs_created += 1
    return (201 if done.created else 200), {
        "created": done.created, "flattr": flattr_json(done.flattr, done.thing)
    }


@api.route("DELETE", "/flattrs/{id}", summary="Take a flattr back while its month is open",
           scope="flattr", errors=("not_found", "period_closed"))
async def take_back(call: Call):
    taken = await flattrs.take_back(call.conn, call.member_id, call.path_id())
    return {"taken_back": {"id": taken.id, "period": taken.period}}


@api.route("DELETE", "/flattrs", summary="Take back the flattr of a thing this month",
           scope="flattr", query=ThingQuery,
           errors=("invalid_url", "invalid_thing", "not_found", "period_closed"),
           description="Give exactly one of `url` or `thing`. Answers the flattr taken back as "
                       "GET /flattrs lists it, under `deleted`. 404 `not_found` when the member "
                       "has no flattr of it this month; 409 `period_closed` when this month is "
                       "being settled, or when the flattr is of the month just ended.")
async def take_back_thing(call: Call):
    taken = await flattrs.take_back_thing(call.conn, call.member_id,
                                          call.query.url or call.query.thing)
    return {"deleted": listed_json(taken)}


def listed_json(row: dict) -> dict:
    return {"id": row["id"], "created_at": when(row["created_at"]), "source": row["source"],
            "thing": row["thing"], "url": row["url"], "funding": row["funding"] or "pending"}


@api.route("GET", "/flattrs", summary="The member's flattrs of a month", scope="read",
           query=PeriodQuery, errors=("invalid_period",))
async def list_flattrs(call: Call):
    period = Period.parse(call.query.period) if call.query.period else Period.current()
    rows = await flattrs.flattrs_of(call.conn, call.member_id, period)
    return {"period": str(period), "flattrs": [listed_json(r) for r in rows]}
