"""Monthly statements (page, charts, CSV) and the inbox of monthly summaries."""

import csv
import io
from collections import defaultdict

from aiohttp import web

from core import inbox
from core.errors import InvalidPeriod
from core.money import format_amount
from core.periods import Period
from core.statements import statement_of
from gateway import keys
from gateway.pages import charts
from gateway.pages.visits import Visit, page, render, see_other
from gateway.present import when

HISTORY_MONTHS = 12
STATE_WORDS = {"paid": "paid to", "held": "held: no active owner yet",
               "released": "released to", "returned": "returned to you"}
CSV_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _period(visit: Visit) -> Period:
    raw = visit.request.match_info["period"]
    if len(raw) != 7:
        raise InvalidPeriod("a month looks like 2026-11")
    return Period.parse(raw)


def destinations(statement: dict) -> list[charts.Bar]:
    """Where a statement's charge went: the fee, then each receiver, held and returned."""
    bars = [charts.Bar("platform fee", statement["fee_micros"], "fee")] \
        if statement["fee_micros"] else []
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for share in statement["shares"]:
        to = share["to"] if share["state"] in ("paid", "released") else ""
        totals[(share["state"], to or "")] += share["amount_micros"]
    for (state, to), amount in sorted(totals.items(), key=lambda item: -item[1]):
        label = f"{STATE_WORDS[state]} {to}".strip() if to else STATE_WORDS[state]
        bars.append(charts.Bar(label, amount, state))
    return bars


async def statement_page(visit: Visit) -> web.StreamResponse:
    member = visit.signed_in()
    period = _period(visit)
    history = []
    async with visit.app[keys.engine_key].connect() as conn:
        statement = await statement_of(conn, member.id, period)
        for back in range(HISTORY_MONTHS - 1, -1, -1):
            month = period.plus_months(-back)
            found = statement if back == 0 else await statement_of(conn, member.id, month)
            history.append((str(month), found["charged_micros"], found["received_micros"]))
    money = visit.money
    return render(visit, "statement.html", {
        "title": f"Statement {period}", "period": str(period), "statement": statement,
        "state_words": STATE_WORDS,
        "where_chart": charts.where_it_went(destinations(statement),
                                            f"Where your money went in {period}", money),
        "months_chart": charts.months(history, "Given and received, the last twelve months",
                                      money),
        "previous": str(period.previous()),
        "next": str(period.next()) if period < Period.current() else None,
    })


show_statement = page()(statement_page)


@page()
async def show_statements(visit: Visit) -> web.StreamResponse:
    visit.signed_in()
    current = Period.current()
    recent = [str(current.plus_months(-back)) for back in range(HISTORY_MONTHS)]
    return render(visit, "statements.html", {"title": "Statements", "periods": recent})


def _cell(value: object) -> str:
    text = str(value)
    return "'" + text if text.startswith(CSV_FORMULA_STARTS) else text


@page()
async def statement_csv(visit: Visit) -> web.StreamResponse:
    member = visit.signed_in()
    period = _period(visit)
    async with visit.app[keys.engine_key].connect() as conn:
        statement = await statement_of(conn, member.id, period)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["period", "line", "thing", "to", "state", "amount", "currency"])
    currency = visit.settings.currency
    rows = [("charge", "", "", statement["status"], statement["charged_micros"]),
            ("fee", "", "platform", "", statement["fee_micros"])]
    rows += [("share", s["thing"], s["to"] or "", s["state"], s["amount_micros"])
             for s in statement["shares"]]
    rows += [("received", "", member.handle, "shares", statement["received_shares_micros"]),
             ("received", "", member.handle, "released", statement["received_released_micros"])]
    for line, thing, to, state, micros in rows:
        writer.writerow([str(period), line, _cell(thing), _cell(to), state, format_amount(micros),
                         currency])
    return web.Response(
        text=out.getvalue(), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="flattr-{period}.csv"'})


async def inbox_page(visit: Visit, *, error: str | None = None, status: int = 200
                     ) -> web.StreamResponse:
    member = visit.signed_in()
    raw_before = visit.request.query.get("before", "")
    before = int(raw_before) if raw_before.isdigit() and len(raw_before) <= 18 else None
    async with visit.app[keys.engine_key].connect() as conn:
        found = await inbox.page_of(conn, member.id, limit=20, before=before)
    return render(visit, "inbox.html", {
        "title": "Inbox", "error": error, "page": found, "when": when,
    }, status=status)


show_inbox = page()(inbox_page)


@page(on_error=inbox_page)
async def mark_read(visit: Visit) -> web.StreamResponse:
    message_id = visit.call().path_id()
    await visit.act(lambda conn, member, _: inbox.mark_read(conn, member.id, message_id))
    return see_other("/inbox")


@page(on_error=inbox_page)
async def mark_all_read(visit: Visit) -> web.StreamResponse:
    await visit.act(lambda conn, member, _: inbox.mark_all_read(conn, member.id))
    return see_other("/inbox")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/statements", show_statements)
    app.router.add_get(r"/statements/{period:[^/.]+}.csv", statement_csv)
    app.router.add_get(r"/statements/{period:[^/.]+}", show_statement)
    app.router.add_get("/inbox", show_inbox)
    app.router.add_post("/inbox/read", mark_all_read)
    app.router.add_post("/inbox/{id}/read", mark_read)
