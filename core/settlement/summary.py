"""What a settlement did, in totals: for `flattr settle` and the admin API."""

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.dialect import sum_micros
from core.periods import Period
from core.schema import charges, settlements, shares


async def settlement_summary(conn: AsyncConnection, period: Period) -> dict:
    p = str(period)
    run = (await conn.execute(select(settlements).where(settlements.c.period == p))).first()
    by_status = {
        status: (count, charged, fees)
        for status, count, charged, fees in await conn.execute(
            select(
                charges.c.status,
                func.count(),
                sum_micros(charges.c.charge_micros),
                sum_micros(charges.c.fee_micros),
            )
            .where(charges.c.period == p)
            .group_by(charges.c.status)
        )
    }
    paid, held = (
        await conn.execute(
            select(
                sum_micros(case((shares.c.state == "paid", shares.c.amount_micros))),
                sum_micros(case((shares.c.state != "paid", shares.c.amount_micros))),
            ).where(shares.c.period == p)
        )
    ).one()
    resolved = dict(
        (
            await conn.execute(
                select(shares.c.state, sum_micros(shares.c.amount_micros))
                .where(shares.c.resolved_by.in_([f"settle:{p}:release", f"settle:{p}:return"]))
                .group_by(shares.c.state)
            )
        ).all()
    )
    funded = by_status.get("funded", (0, 0, 0))
    return {
        "period": p,
        "status": run.status if run else "open",
        "givers_funded": funded[0],
        "givers_unfunded": by_status.get("unfunded", (0, 0, 0))[0],
        "charged_micros": funded[1] or 0,
        "fees_micros": funded[2] or 0,
        "to_revenue_micros": paid,
        "held_micros": held,
        "released_micros": resolved.get("released", 0),
        "returned_micros": resolved.get("returned", 0),
        "to_charity_micros": by_status.get("idle", (0, 0, 0))[1] or 0,
    }
