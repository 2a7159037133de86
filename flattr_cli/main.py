"""The `flattr` command: one entry point for every part of the platform."""

import asyncio
import functools
import json
import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from core import (
    claims,
    flattrs,
    funding,
    members,
    migrate,
    outbox,
    payouts,
    replies,
    subscriptions,
)
from core.checks import run_checks
from core.clock import utc_now
from core.db import create_engine
from core.errors import DomainError, InvalidPeriod
from core.money import parse_amount, parse_positive_amount
from core.periods import Period
from core.schema import DELIVERY_STATES
from core.settings import Settings
from core.settlement import STAGES, settle_period
from core.settlement.summary import settlement_summary
from core.statements import balances_of, statement_of
from flattr_cli.output import emit, fail
from flattr_cli.output_files import OutputFile


def json_option(command: Callable) -> Callable:
    """`--json` is accepted after any command as well as before it."""

    def remember(context: click.Context, _param: click.Parameter, value: bool) -> bool:
        if value:
            context.find_root().obj["json"] = True
        return value

    return click.option(
        "--json", "as_json", is_flag=True, expose_value=False, callback=remember,
        help="Print one JSON object instead of a table.",
    )(command)


@click.group()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of a table.")
@click.pass_context
def cli(context: click.Context, as_json: bool) -> None:
    """Flattr: set a monthly budget, flattr what you like, the month's end shares it out."""
    context.ensure_object(dict)
    context.obj["json"] = as_json


def settings() -> Settings:
    return Settings()


def with_database(work: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """Run an async command body with a migrated database; domain errors end the command."""

    @functools.wraps(work)
    def command(*args: Any, **kwargs: Any) -> Any:
        config = settings()
        migrate.upgrade(config.database_url)

        async def body() -> Any:
            engine = create_engine(config.database_url)
            try:
                return await work(engine, config, *args, **kwargs)
            finally:
                await engine.dispose()

        try:
            return asyncio.run(body())
        except DomainError as error:
            fail(error)

    return command


def period_argument(text: str) -> Period:
    try:
        return Period.parse(text)
    except InvalidPeriod as error:
        raise click.BadParameter(error.message) from error


async def member_id(conn: AsyncConnection, handle: str) -> int:
    return (await members.member_by_handle(conn, handle)).id


def key_option(command: Callable) -> Callable:
    """`--key`: a retry with the same key moves no money again. Without it the command makes
    one and prints it, so that the operator can retry with it."""

    def chosen(_context: click.Context, _param: click.Parameter, value: str | None) -> str:
        if value is None:
            return uuid.uuid4().hex
        if not 1 <= len(value) <= 200 or not value.isprintable():
            raise click.BadParameter("a key has 1 to 200 printable characters")
        return value

    return click.option(
        "--key", callback=chosen,
        help="Idempotency key: a retry with the same key moves no money again "
             "(default: a new key, printed).",
    )(command)


# --- database -----------------------------------------------------------------------------


@cli.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@json_option
def db_upgrade() -> None:
    """Create or migrate the schema to the newest version."""
    config = settings()
    migrate.upgrade(config.database_url)
    emit({"database": _safe(config.database_url), "schema": "up to date"}, title="database")


def _safe(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# --- members and money --------------------------------------------------------------------


@cli.group()
def member() -> None:
    """Members."""


@member.command("create")
@click.argument("handle")
@click.option("--email")
@click.option("--password")
@click.option("--admin", is_flag=True, help="The member may use the admin API.")
@json_option
@with_database
async def member_create(engine: AsyncEngine, config: Settings, handle, email, password, admin):
    """Create a member with their giving and revenue accounts."""
    async with engine.begin() as conn:
        made = await members.create_member(
            conn, handle, email=email, password=password, is_admin=admin
        )
    emit({"id": made.id, "handle": made.handle, "email": made.email, "admin": made.is_admin},
         title="member created")


@cli.command()
@click.argument("handle")
@click.argument("amount")
@key_option
@json_option
@with_database
async def credit(engine: AsyncEngine, config: Settings, handle, amount, key):
    """Credit AMOUNT to a member's giving balance (manual funding)."""
    async with engine.begin() as conn:
        who = await member_id(conn, handle)
        recorded = await funding.credit(
            conn, who, parse_positive_amount(amount), idempotency_key=key
        )
        balances = await balances_of(conn, who)
    emit({"handle": handle, "currency": config.currency, "credited_micros":
          parse_positive_amount(amount), "key": key, "replayed": not recorded.created,
          "giving_micros": balances["giving"]}, title="credit")


@cli.command()
@click.argument("handle")
@click.argument("amount")
@json_option
@with_database
async def budget(engine: AsyncEngine, config: Settings, handle, amount):
    """Set a member's monthly budget (at least the minimum)."""
    async with engine.begin() as conn:
        updated = await members.set_budget(
            conn, await member_id(conn, handle), parse_amount(amount), config
        )
    emit({"handle": updated.handle, "currency": config.currency,
          "budget_micros": updated.budget_micros}, title="budget")


@cli.command()
@click.argument("handle")
@click.argument("amount")
@key_option
@json_option
@with_database
async def transfer(engine: AsyncEngine, config: Settings, handle, amount, key):
    """Move AMOUNT of a member's revenue to their giving balance."""
    async with engine.begin() as conn:
        who = await member_id(conn, handle)
        recorded = await funding.transfer_revenue_to_giving(
            conn, who, parse_positive_amount(amount), idempotency_key=key
        )
        balances = await balances_of(conn, who)
    emit({"handle": handle, "currency": config.currency,
          "transferred_micros": parse_positive_amount(amount), "key": key,
          "replayed": not recorded.created,
          "giving_micros": balances["giving"], "revenue_micros": balances["revenue"]},
         title="transfer")


@cli.command()
@click.argument("handle")
@json_option
@with_database
async def balance(engine: AsyncEngine, config: Settings, handle):
    """Giving, revenue and what is held for the member's things."""
    async with engine.connect() as conn:
        who = await members.member_by_handle(conn, handle)
        balances = await balances_of(conn, who.id)
    emit({"handle": who.handle, "currency": config.currency,
          "giving_micros": balances["giving"], "revenue_micros": balances["revenue"],
          "held_for_you_micros": balances["held_for_you"],
          "budget_micros": who.budget_micros}, title=f"balance of {who.handle}")


# --- flattring ----------------------------------------------------------------------------


@cli.command("flattr")
@click.argument("handle")
@click.argument("thing")
@click.option("--period", "period_text", help="Put it in another period (admins and tests).")
@json_option
@with_database
async def flattr_command(engine: AsyncEngine, config: Settings, handle, thing, period_text):
    """Flattr a URL or a thing key (discord:G/C/M, telegram:C/M) for a member."""
    period = period_argument(period_text) if period_text else None
    async with engine.begin() as conn:
        done = await flattrs.flattr(
            conn, await member_id(conn, handle), thing, period=period, source="cli"
        )
    emit({"id": done.flattr.id, "handle": handle, "thing": done.thing.key,
          "period": done.flattr.period, "created": done.created,
          "owner": done.thing.owner_handle}, title="flattr")


@cli.command()
@click.argument("handle")
@click.argument("host")
@click.option("--verified", is_flag=True, help="Mark the claim verified (admin).")
@click.option("--prefix", default=None, help="Claim only URLs under this path (default /).")
@json_option
@with_database
async def claim(engine: AsyncEngine, config: Settings, handle, host, verified, prefix):
    """Claim HOST for a member; with --verified an admin marks it proven."""
    async with engine.begin() as conn:
        made = await claims.create_claim(conn, await member_id(conn, handle), host, prefix)
        if verified:
            made = await claims.mark_verified(conn, made.id)
    emit({"id": made.id, "handle": handle, "host": made.host, "path_prefix": made.path_prefix,
          "verified": made.verified_at is not None,
          "proof": f"serve https://{made.host}/.well-known/flattr.txt containing {handle}"},
         title="claim")


@cli.command()
@click.argument("handle")
@click.argument("identity")
@json_option
@with_database
async def link(engine: AsyncEngine, config: Settings, handle, identity):
    """Link a chat identity (discord:ID or telegram:ID) to a member."""
    async with engine.begin() as conn:
        identity_id = await members.link_identity(conn, await member_id(conn, handle), identity)
    emit({"id": identity_id, "handle": handle, "identity": identity}, title="linked")


@cli.command()
@click.argument("handle")
@click.argument("thing")
@click.option("--months", type=click.IntRange(1, subscriptions.MAX_MONTHS), required=True)
@json_option
@with_database
async def subscribe(engine: AsyncEngine, config: Settings, handle, thing, months):
    """Flattr THING this month and every following month, MONTHS months in all."""
    async with engine.begin() as conn:
        made = await subscriptions.subscribe(conn, await member_id(conn, handle), thing, months)
    emit({"id": made.id, "handle": handle, "thing_id": made.thing_id,
          "first_period": made.first_period, "last_period": made.last_period},
         title="subscription")


# --- the month's end ----------------------------------------------------------------------


@cli.command()
@click.argument("period", callback=lambda _c, _p, value: period_argument(value))
@json_option
@with_database
async def settle(engine: AsyncEngine, config: Settings, period: Period):
    """Settle a period that has ended: charge, split, pay, release and return."""
    if click.get_current_context().find_root().obj.get("json"):
        result = await settle_period(engine, period, config)
    else:
        with click.progressbar(length=len(STAGES), label=f"settling {period}") as bar:
            result = await settle_period(
                engine, period, config, on_stage=lambda _n, _name: bar.update(1)
            )
    async with engine.connect() as conn:
        summary = await settlement_summary(conn, period)
    summary["already_settled"] = result.already_settled
    summary["currency"] = config.currency
    emit(summary, title=f"settlement of {period}")


@cli.command()
@click.argument("handle")
@click.argument("period", callback=lambda _c, _p, value: period_argument(value))
@json_option
@with_database
async def statement(engine: AsyncEngine, config: Settings, handle, period: Period):
    """What a member was charged in PERIOD, the fee, each share and where it went."""
    async with engine.connect() as conn:
        result = await statement_of(conn, await member_id(conn, handle), period)
    result = {"handle": handle, "currency": config.currency, **result}
    emit(result, title=f"statement of {handle} for {period}", rows=result["shares"])


@cli.command()
@json_option
@with_database
async def check(engine: AsyncEngine, config: Settings):
    """Check every invariant of the ledger; exit 0 only if all hold."""
    async with engine.connect() as conn:
        findings = await run_checks(conn)
    result = {
        "ok": all(f.holds for f in findings),
        "checks": [
            {"name": f.invariant.name, "description": f.invariant.description,
             "holds": f.holds, "violations": f.violations[:5]}
            for f in findings
        ],
    }
    emit(result, title="ledger check", rows=[
        {"check": c["name"], "holds": c["holds"], "what": c["description"]}
        for c in result["checks"]
    ])
    if not result["ok"]:
        raise SystemExit(1)


# --- the worker and the outbox -------------------------------------------------------------


def instant_argument(_context: click.Context, _param: click.Parameter,
                     value: str | None) -> datetime | None:
    """--now: an ISO 8601 instant with its offset, e.g. 2026-11-01T00:30:00Z."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise click.BadParameter(
            f"{value[:40]!r} is not an instant like 2026-11-01T00:30:00Z") from error
    if moment.tzinfo is None:
        raise click.BadParameter(f"{value[:40]!r} has no time zone: end it with Z for UTC")
    return moment.astimezone(UTC)


@cli.command("worker")
@click.option("--once", is_flag=True, help="Do what is due now, print it and exit.")
@click.option("--now", callback=instant_argument,
              help="With --once: the instant to act at (UTC), e.g. 2026-11-01T00:30:00Z.")
@click.option("--interval", type=click.FloatRange(min=1), default=60, show_default=True,
              help="Seconds between rounds of the long-running worker.")
@click.option("--metrics-port", type=click.IntRange(0, 65535),
              help="Serve /metrics (Prometheus) on this port.")
@click.option("--metrics-host", default="127.0.0.1", show_default=True)
@json_option
def worker_command(once: bool, now: datetime | None, interval: float,
                   metrics_port: int | None, metrics_host: str) -> None:
    """Settle each month once it may be, send reminders and e-mail: every --interval
    seconds until SIGTERM, or once with --once."""
    if now is not None and not once:
        raise click.UsageError("--now goes with --once (the long-running worker uses the clock)")
    if once and metrics_port is not None:
        raise click.UsageError("--metrics-port is for the long-running worker, not --once")
    from gateway.logs import configure_logging

    # Its one line per piece of work on standard error, as the gateway's lines (FLATTR_LOG_
    # FORMAT, FLATTR_LOG_LEVEL); --json output stays alone on standard output.
    config = settings()
    configure_logging(config.log_format, config.log_level)
    if once:
        _worker_once(now)
    else:
        _worker_forever(interval, metrics_host, metrics_port)


@with_database
async def _worker_once(engine: AsyncEngine, config: Settings, now: datetime | None) -> None:
    from worker.cycle import run_due

    started = now or utc_now()
    done = [d.as_dict() for d in await run_due(engine, config, now)]  # None: by the clock
    emit({"now": started.isoformat(), "currency": config.currency, "done": done},
         title=f"worker at {started:%Y-%m-%d %H:%M:%S} UTC",
         rows=[{"work": d["work"], "what": d["line"]} for d in done])
    if any(d["failed"] for d in done):
        raise SystemExit(1)


@with_database
async def _worker_forever(engine: AsyncEngine, config: Settings, interval: float,
                          metrics_host: str, metrics_port: int | None) -> None:
    from worker.main import run_forever

    await run_forever(engine, config, interval=interval, metrics_host=metrics_host,
                      metrics_port=metrics_port)


OUTBOX_COLUMNS = ("id", "handle", "kind", "period", "channel", "state", "attempts",
                  "available_at", "last_error")


@cli.group("outbox", invoke_without_command=True)
@click.option("--state", type=click.Choice(DELIVERY_STATES), help="Only deliveries in it.")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@json_option
@click.pass_context
def outbox_group(context: click.Context, state: str | None, limit: int) -> None:
    """The outbox's deliveries, newest first (`flattr outbox --state dead`); retry one."""
    if context.invoked_subcommand is None:
        _outbox_list(state, limit)


@with_database
async def _outbox_list(engine: AsyncEngine, config: Settings, state: str | None,
                       limit: int) -> None:
    async with engine.connect() as conn:
        found = await outbox.deliveries(conn, state=state, limit=limit)
    emit({"state": state or "any", "count": len(found), "deliveries": found},
         title="outbox", rows=[{name: row[name] for name in OUTBOX_COLUMNS} for row in found])


@outbox_group.command("retry")
@click.argument("delivery_id", type=click.IntRange(1, 2**63 - 1))
@json_option
@with_database
async def outbox_retry(engine: AsyncEngine, config: Settings, delivery_id: int) -> None:
    """Send delivery ID again, from a fresh count of tries (a dead or unreachable one)."""
    async with engine.begin() as conn:
        again = await outbox.retry(conn, delivery_id)
    emit(again, title="outbox delivery")


# --- payouts ------------------------------------------------------------------------------


@cli.group()
def payout() -> None:
    """Payouts of revenue."""


def _payout_fields(made: payouts.Payout) -> dict:
    return {"id": made.id, "member_id": made.member_id, "amount_micros": made.amount_micros,
            "status": made.status}


PAYOUT_REQUESTS = "cli:payout-request"  # the scope of their keys among stored replies


@payout.command("request")
@click.argument("handle")
@click.argument("amount", required=False)
@key_option
@json_option
@with_database
async def payout_request(engine: AsyncEngine, config: Settings, handle, amount, key):
    """Ask for a payout of AMOUNT (default: all revenue), in whole cents."""
    async with engine.begin() as conn:
        who = await member_id(conn, handle)
        # In the payout's own transaction: a retry with the key prints the first payout.
        fingerprint = replies.request_fingerprint("payout request", str(who), amount or "")
        stored = await replies.claim_key(conn, PAYOUT_REQUESTS, key, fingerprint)
        if stored is not None:
            emit({**json.loads(stored.body), "replayed": True}, title="payout requested")
            return
        made = await payouts.request_payout(
            conn, who, config,
            amount_micros=parse_positive_amount(amount) if amount else None,
        )
        result = {**_payout_fields(made), "currency": config.currency, "key": key}
        await replies.store_reply(conn, PAYOUT_REQUESTS, key, 201, json.dumps(result))
    emit({**result, "replayed": False}, title="payout requested")


def _payout_outcome(outcome: str, help_text: str) -> None:
    """`flattr payout paid ID` and `flattr payout failed ID`: the admin's two answers."""

    @payout.command(outcome, help=help_text + " Marking it again moves nothing: the payout "
                    "and its outcome are the key.")
    @click.argument("payout_id", type=int)
    @json_option
    @with_database
    async def resolve(engine: AsyncEngine, config: Settings, payout_id: int) -> None:
        async with engine.begin() as conn:
            before = await payouts.payout_by_id(conn, payout_id)
            made = await payouts.resolve_payout(conn, payout_id, outcome)
        emit({**_payout_fields(made), "currency": config.currency,
              "replayed": before.status == outcome}, title="payout")


_payout_outcome("paid", "Mark a requested payout paid. A payout sent in a batch is the "
                "bank's to answer (payout confirm FILE): refused, exit 2.")
_payout_outcome("failed", "Mark a requested payout failed: the money goes back to revenue. A "
                "payout sent in a batch is the bank's to answer (payout reject FILE): refused, "
                "exit 2.")


@payout.command("list")
@click.argument("handle", required=False)
@json_option
@with_database
async def payout_list(engine: AsyncEngine, config: Settings, handle):
    """List payouts, of one member or of all."""
    async with engine.connect() as conn:
        who = await member_id(conn, handle) if handle else None
        found = await payouts.payouts_of(conn, who)
    rows = [_payout_fields(p) for p in found]
    emit({"currency": config.currency, "count": len(rows), "payouts": rows}, title="payouts",
         rows=rows)


@payout.command("account")
@click.argument("handle")
@click.argument("iban")
@click.argument("name")
@click.option("--bic", help="The bank's BIC, when the bank wants it.")
@json_option
@with_database
async def payout_account_command(engine: AsyncEngine, config: Settings, handle, iban, name,
                                 bic):
    """Set where HANDLE's payouts go: an IBAN (checked) and the account holder's NAME."""
    from core.payout_accounts import set_payout_account  # schwifty: only when needed

    async with engine.begin() as conn:
        account = await set_payout_account(conn, await member_id(conn, handle), iban, name, bic)
    emit({"handle": handle, "iban": account.iban, "name": account.holder_name,
          "bic": account.bic}, title="payout account")


OUT_HELP = "Where to write the file (default: ./<its message id>.xml); refused if it exists."
FORCE_HELP = "Overwrite the file if it exists."


@payout.command("batch")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help=OUT_HELP)
@click.option("--force", is_flag=True, help=FORCE_HELP)
@json_option
@with_database
async def payout_batch(engine: AsyncEngine, config: Settings, out: Path | None, force: bool):
    """Put every requested payout whose member gave an IBAN into one SEPA credit-transfer
    file (pain.001) for the platform's bank, and mark them sent. Run again, it sends none
    twice: the file is written before the payouts are marked, and kept in the database
    (`flattr payout export` writes it again)."""
    from core.payout_batches import make_batch, unsent_without_account
    from core.payout_methods.sepa import Sepa

    method = Sepa(config)
    if out is not None:  # before any payout is looked at
        OutputFile(out, force).refuse_existing()
    written = None
    try:
        async with engine.begin() as conn:
            batch = await make_batch(conn, method)
            waiting = await unsent_without_account(conn)
            if batch is not None:
                out = out or Path(f"{batch.message_id}.xml")
                written = OutputFile(out, force)
                written.write(batch.document)
    except BaseException:
        if written is not None:
            written.abandon()
        raise
    if written is not None:
        written.place()
    emit({"batch_id": batch and batch.id, "message_id": batch and batch.message_id,
          "count": batch.payout_count if batch else 0,
          "total_micros": batch.total_micros if batch else 0, "currency": config.currency,
          "file": str(out) if batch else None, "waiting_for_an_iban": waiting},
         title="payout batch" if batch else "no payout to send")


@payout.command("export")
@click.argument("batch_name", metavar="BATCH")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help=OUT_HELP)
@click.option("--force", is_flag=True, help=FORCE_HELP)
@json_option
@with_database
async def payout_export(engine: AsyncEngine, config: Settings, batch_name: str,
                        out: Path | None, force: bool):
    """Write again the file of BATCH (its id or message id), sent before by `flattr payout
    batch`: the same bytes, kept in the database. It marks nothing."""
    from core.payout_batches import batch_named

    async with engine.connect() as conn:
        batch = await batch_named(conn, batch_name)
    out = out or Path(f"{batch.message_id}.xml")
    written = OutputFile(out, force)
    try:
        written.write(batch.document)
    except BaseException:
        written.abandon()
        raise
    written.place()
    emit({"batch_id": batch.id, "message_id": batch.message_id, "count": batch.payout_count,
          "total_micros": batch.total_micros, "currency": config.currency,
          "created_at": batch.created_at, "file": str(out)}, title="payout batch exported")


def _payout_answer(name: str, outcome: str, help_text: str) -> None:
    """`flattr payout confirm FILE` and `flattr payout reject FILE`: the bank's answer."""

    @payout.command(name, help=help_text)
    @click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--payout", "only", type=click.IntRange(1, 2**63 - 1), multiple=True,
                  help="Only this payout of the file (repeat for more).")
    @json_option
    @with_database
    async def answer(engine: AsyncEngine, config: Settings, file: Path, only: tuple[int, ...]):
        from core.payout_batches import answer_batch
        from core.payout_methods.sepa import Sepa

        document = file.read_bytes()
        async with engine.begin() as conn:
            answered = await answer_batch(conn, Sepa(config), document, outcome,
                                          only=frozenset(only) or None)
        rows = [{**_payout_fields(a.payout), "changed": a.changed} for a in answered]
        emit({"outcome": outcome, "currency": config.currency, "count": len(rows),
              "changed": sum(a.changed for a in answered), "payouts": rows},
             title=f"payouts {outcome}", rows=rows)


_payout_answer("confirm", "paid", "The bank paid the file FILE (made by `flattr payout batch`): "
               "its payouts are paid. Again, it changes nothing.")
_payout_answer("reject", "failed", "The bank refused FILE, or with --payout some of its "
               "payouts: they failed, and their money goes back to revenue.")


# --- serving and tokens -------------------------------------------------------------------


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option("--demo/--no-demo", default=None,
              help="Create the demo member and print its token (default: on the embedded "
                   "SQLite set-up only).")
@click.option("--workers", type=click.IntRange(1, 256),
              help="Gateway processes sharing the port (SO_REUSEPORT), each with its own "
                   "loop, database pool and batcher, restarted by a supervising parent when "
                   "one dies. Default: the number of cores on PostgreSQL with Redis (or "
                   "--allow-local-limits), else 1. Several processes need PostgreSQL: SQLite "
                   "lets one process write at a time, so they would only queue on its lock. "
                   "Each process opens up to FLATTR_DATABASE_POOL_SIZE + "
                   "FLATTR_DATABASE_POOL_OVERFLOW connections.")
@click.option("--allow-local-limits", is_flag=True,
              help="Run several processes without Redis (FLATTR_REDIS_URL): each then counts "
                   "rate limits and learns of revoked tokens on its own.")
@click.option("--shutdown-timeout", type=click.FloatRange(0, 600, min_open=True), default=10.0,
              show_default=True,
              help="Seconds the requests in flight get after SIGTERM or SIGINT before they "
                   "are cancelled; a process has stopped within twice that plus 10 s.")
def serve(host: str, port: int, demo: bool | None, workers: int | None,
          allow_local_limits: bool, shutdown_timeout: float) -> None:
    """Run the HTTP gateway (JSON API at /api/v1) until SIGTERM or SIGINT, then stop
    gracefully: no new connections, the requests in flight answered, every flattr
    answered 201 written."""
    from gateway import server

    # First thing: a stop asked for while the gateway starts (the migration included) is
    # kept for when it serves, and then graceful.
    early = server.StopSignals()
    from gateway.app import create_app, freeze_startup_objects
    from gateway.demo import ensure_demo
    from gateway.logs import configure_logging
    from gateway.settings import GatewaySettings
    from gateway.supervisor import Supervisor, WorkerSpec

    config = settings()
    configure_logging(config.log_format, config.log_level)
    sqlite = config.database_url.startswith("sqlite")
    if workers is None:
        shared_limits = config.redis_url is not None or allow_local_limits
        workers = (os.cpu_count() or 1) if shared_limits and not sqlite else 1
    if workers > 1 and sqlite:
        raise click.ClickException(
            f"--workers {workers} needs PostgreSQL (FLATTR_DATABASE_URL): SQLite lets one "
            "process write at a time; use --workers 1")
    if workers > 1 and config.redis_url is None and not allow_local_limits:
        raise click.ClickException(
            f"--workers {workers} without Redis would count rate limits and token "
            "revocations per process: set FLATTR_REDIS_URL, or pass --allow-local-limits")
    migrate.upgrade(config.database_url)
    embedded = sqlite and config.redis_url is None
    if demo if demo is not None else embedded:
        made = asyncio.run(_with_engine(config, lambda engine: ensure_demo(engine, config)))
        base = f"http://{host}:{port}/api/v1"
        click.echo(
            f"Demo member '{made.handle}' (password demo-password), token for this run:\n"
            f"  export FLATTR_TOKEN={made.token}\n"
            f"  curl -s -H \"Authorization: Bearer $FLATTR_TOKEN\" {base}/me\n"
            f"  curl -s -H \"Authorization: Bearer $FLATTR_TOKEN\" -H 'Content-Type: "
            f"application/json' -d '{{\"url\": \"https://example.com/\"}}' {base}/flattrs"
        )
    click.echo(f"Flattr gateway on http://{host}:{port} (database {_safe(config.database_url)},"
               f" redis {'on' if config.redis_url else 'off'}, {workers} "
               f"process{'es' if workers > 1 else ''})")
    try:
        if workers > 1:
            spec = WorkerSpec(config, GatewaySettings(), host, port, shutdown_timeout,
                              os.getpid())
            raise SystemExit(Supervisor(spec, workers, early).run())
        app = create_app(config, GatewaySettings())
        app.on_startup.append(freeze_startup_objects)
        server.run(app, host, port, shutdown_timeout=shutdown_timeout, early=early)
    except server.CannotListen as error:
        raise click.ClickException(str(error)) from error


async def _with_engine(config: Settings, work: Callable[[AsyncEngine], Awaitable[Any]]) -> Any:
    engine = create_engine(config.database_url)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


@cli.group()
def token() -> None:
    """API tokens (the operator's way to make bot and admin tokens)."""


@token.command("create")
@click.argument("handle")
@click.option("--scopes", default="read,flattr", show_default=True,
              help="Comma-separated: read, flattr, account, admin, bot.")
@click.option("--label")
@json_option
@with_database
async def token_create(engine: AsyncEngine, config: Settings, handle, scopes, label):
    """Make a token for HANDLE and print it once (only its hash is stored)."""
    from core import tokens

    async with engine.begin() as conn:
        issued = await tokens.issue_token(
            conn, await member_id(conn, handle), tokens.parse_scopes(scopes), label=label,
            may_grant_privileged=True,
        )
    emit({"id": issued.info.id, "handle": handle, "scopes": ",".join(sorted(issued.info.scopes)),
          "label": label, "token": issued.token}, title="token (shown once)")


# --- the chat bots -----------------------------------------------------------------------


@cli.group()
def bot() -> None:
    """The chat bots (each talks to the gateway over HTTP with a bot-scoped token)."""


@bot.command("telegram")
def bot_telegram() -> None:
    """Run the Telegram bot: FLATTR_TELEGRAM_TOKEN, FLATTR_GATEWAY_URL, FLATTR_GATEWAY_TOKEN
    (FLATTR_TELEGRAM_BASE_URL, FLATTR_REDIS_URL, FLATTR_TELEGRAM_WEBHOOK_URL optional)."""
    from bots.telegram.run import main

    raise SystemExit(main())


@bot.command("discord")
def bot_discord() -> None:
    """Run the Discord bot: FLATTR_DISCORD_TOKEN, FLATTR_GATEWAY_URL, FLATTR_GATEWAY_TOKEN
    (FLATTR_DISCORD_API_URL, FLATTR_DISCORD_GATEWAY_URL, FLATTR_REDIS_URL, FLATTR_LOG_FORMAT
    optional)."""
    from bots.discord.run import main
    from gateway.logs import configure_logging  # log lines as the gateway's (no gateway app)

    raise SystemExit(main(configure_logging))


# --- the browser extension ----------------------------------------------------------------


@cli.group()
def extension() -> None:
    """The browser extension."""


@extension.command("pack")
@click.option("--out", default="dist", show_default=True, help="Folder for the zip.")
def extension_pack(out: str) -> None:
    """Zip extension/ as a store takes it: dist/flattr-extension-<version>.zip."""
    import subprocess
    import sys
    from pathlib import Path

    repository = Path(__file__).resolve().parent.parent
    script = repository / "scripts" / "pack-extension"
    if not script.exists():
        raise click.ClickException("the extension sources are not here: run it in a checkout")
    done = subprocess.run([sys.executable, str(script), "--out", out], cwd=repository,
                          check=False)
    raise SystemExit(done.returncode)
