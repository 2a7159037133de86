"""Reminders: near a month's end, a member who flattred in it but whose giving balance is
below their budget is told to top up, once per month (the outbox keeps one message per
member, period and kind).

Who is due is one set-based query; those already reminded are left out of it, so a worker
that looks every minute renders nothing twice.
"""

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from html import escape
from typing import Any

from sqlalchemy import and_, exists, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from core.errors import check
from core.money import format_money
from core.outbox import Message, queue_messages
from core.periods import Period
from core.schema import accounts, flattrs, members, outbox
from core.settings import Settings

KIND = "reminder"
BEFORE_END = timedelta(days=3)  # reminders go out from three days before the month ends
TEXT_LIMIT = 2000  # Discord's limit; Telegram's is 4,096
MAX_PER_RUN = 10_000  # members reminded in one go; the next run takes the rest


@dataclass(frozen=True)
class Due:
    member_id: int
    handle: str
    flattr_count: int
    balance_micros: int
    budget_micros: int | None  # None: the member set no budget yet


def reminders_open(period: Period, now: datetime) -> bool:
    """Whether `now` is in the last three days of `period`."""
    return period.ends_at - BEFORE_END <= now < period.ends_at


async def due_reminders(conn: AsyncConnection, period: Period, minimum_micros: int,
                        limit: int = MAX_PER_RUN) -> list[Due]:
    """Members who flattred in `period`, whose giving balance is below the budget in force
    now or who set none (the month would go unfunded), and who were not reminded yet."""
    counts = (
        select(flattrs.c.member_id, func.count().label("flattr_count"))
        .where(flattrs.c.period == str(period))
        .group_by(flattrs.c.member_id)
        .subquery()
    )
    target = func.coalesce(members.c.budget_micros, literal(minimum_micros))
    reminded = exists().where(outbox.c.member_id == members.c.id,
                              outbox.c.period == str(period), outbox.c.kind == KIND)
    query = (
        select(members.c.id, members.c.handle, counts.c.flattr_count,
               accounts.c.balance_micros, members.c.budget_micros)
        .select_from(
            counts.join(members, members.c.id == counts.c.member_id)
            .join(accounts, and_(accounts.c.member_id == members.c.id,
                                 accounts.c.kind == "giving"))
        )
        # Without a budget a month is charged nothing, whatever the balance: remind them too.
        .where(or_(members.c.budget_micros.is_(None), accounts.c.balance_micros < target),
               ~reminded)
        .order_by(members.c.id)
        .limit(limit)
    )
    return [Due(*row) for row in await conn.execute(query)]


async def queue_reminders(conn: AsyncConnection, settings: Settings, now: datetime) -> int:
    """Queue the reminders due at `now` for the current month; how many were new."""
    period = Period.of(now)
    if not reminders_open(period, now):
        return 0
    due = await due_reminders(conn, period, settings.minimum_budget)
    messages = [render_reminder(member, period, settings) for member in due]
    return await queue_messages(conn, messages, now)


# --- words ----------------------------------------------------------------------------------


def render_reminder(member: Due, period: Period, settings: Settings) -> Message:
    words = _Words(member, period, settings)
    return Message(member.member_id, str(period), KIND, words.subject, words.data(),
                   words.text(), words.html())


class _Words:
    """A reminder's sentences, shared by its text and its e-mail. Only the handle is the
    member's own words: it is escaped in the e-mail."""

    def __init__(self, member: Due, period: Period, settings: Settings) -> None:
        self.member = member
        self.period = period
        self.currency = settings.currency
        self.minimum = settings.minimum_budget
        self.link = f"{settings.public_url}/me"
        last_day = period.ends_at - timedelta(days=1)
        self.month = f"{calendar.month_name[period.month]} {period.year}"
        self.ends = f"{last_day.day} {calendar.month_name[period.month]}"
        self.subject = f"Top up before {self.month} ends"

    def money(self, micros: int) -> str:
        return format_money(micros, self.currency)

    @property
    def unfunded(self) -> bool:
        """Were the month settled now, nothing would be charged."""
        return self.member.budget_micros is None or self.member.balance_micros < self.minimum

    def sentences(self) -> list[str]:
        member, money = self.member, self.money
        flattrs = "1 thing" if member.flattr_count == 1 else f"{member.flattr_count} things"
        said = [f"{self.month} ends on {self.ends} (UTC). You flattred {flattrs} this month, "
                f"and your giving balance is {money(member.balance_micros)}."]
        if member.budget_micros is None:
            said.append(f"You have set no monthly budget: set one of at least "
                        f"{money(self.minimum)} and top up your giving balance to it, or this "
                        "month goes unfunded and your flattrs give nothing.")
        elif self.unfunded:
            said.append(f"Your budget is {money(member.budget_micros)}. Top up, or this month "
                        f"goes unfunded: below {money(self.minimum)} nothing is charged and "
                        "your flattrs give nothing.")
        else:
            said.append(f"Your budget is {money(member.budget_micros)}. Top up, or only "
                        f"{money(member.balance_micros)} of it is shared among your flattrs.")
        return said

    def text(self) -> str:
        text = "\n\n".join([f"Hi {self.member.handle},", *self.sentences(),
                            f"Top up: {self.link}"])
        check(len(text) <= TEXT_LIMIT, f"reminder of member {self.member.member_id} too long")
        return text

    def html(self) -> str:
        paragraphs = "".join(f"<p>{escape(line)}</p>" for line in self.sentences())
        link = escape(self.link, quote=True)
        return (f"<p>Hi {escape(self.member.handle)},</p>{paragraphs}"
                f'<p><a href="{link}">Top up your giving balance</a></p>')

    def data(self) -> dict[str, Any]:
        member = self.member
        return {"period": str(self.period), "currency": self.currency, "handle": member.handle,
                "flattr_count": member.flattr_count, "balance_micros": member.balance_micros,
                "budget_micros": member.budget_micros, "minimum_micros": self.minimum,
                "unfunded": self.unfunded, "url": self.link}
