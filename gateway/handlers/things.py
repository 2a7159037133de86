"""Looking a thing up: its canonical key, owner and counts."""

from sqlalchemy import select

from core import flattrs
from core.members import member_by_id
from core.periods import Period
from core.schema import flattrs as flattrs_table
from core.thing_keys import parse_thing_key
from core.things import owner_of, thing_by_key
from gateway.api import Api, Call
from gateway.schemas import ThingQuery

api = Api()


@api.route("GET", "/things", summary="A thing by url or key: owner and counts", scope=None,
           query=ThingQuery, errors=("invalid_url", "invalid_thing"))
async def lookup(call: Call):
    key = parse_thing_key(call.query.url or call.query.thing)
    thing = await thing_by_key(call.conn, key.key)
    period = Period.current()
    this_period, total = (0, 0) if thing is None else await flattrs.flattr_counts(
        call.conn, thing.id, period
    )
    owner = thing.owner_handle if thing else None
    if thing is None and key.kind == "url":  # never flattred yet: its claim still decides
        owner_id = await owner_of(call.conn, key, None)
        owner = (await member_by_id(call.conn, owner_id)).handle if owner_id else None
    found = {
        "key": key.key, "kind": key.kind, "url": key.url,
        "owner": owner,
        "known": thing is not None, "period": str(period),
        "count_this_period": this_period, "count_total": total,
    }
    if call.principal is not None:
        found["flattred_by_me"] = None
        if thing is not None:
            mine = await call.conn.scalar(
                select(flattrs_table.c.id).where(
                    flattrs_table.c.member_id == call.member_id,
                    flattrs_table.c.thing_id == thing.id,
                    flattrs_table.c.period == str(period),
                )
            )
            found["flattred_by_me"] = mine is not None
            found["my_flattr_id"] = mine
        else:
            found["flattred_by_me"] = False
            found["my_flattr_id"] = None
    return found
