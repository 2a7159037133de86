"""A monthly summary in words: its data (integer micros), a plain text that reads well in
Telegram and Discord and fits Discord's 2,000 characters, and a short HTML e-mail in which
every string a member chose (handles, thing keys) is escaped.

Plain string formatting, and what is the same for every member of the month worked out
once: a settlement renders a summary for each of them.
"""

from functools import cache, partial
from html import escape
from typing import Any

from core.money import format_money
from core.outbox import Message
from core.summaries import TOP_THINGS, Figures, Giving, Receiving, Terms

KIND = "summary"
TEXT_LIMIT = 2000  # Discord's limit; Telegram's is 4,096
KEY_SHOWN = 60  # characters of a thing's key in a list
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


def month_name(terms: Terms) -> str:
    return f"{MONTHS[terms.period.month - 1]} {terms.period.year}"


def subject_of(terms: Terms) -> str:
    return f"Your Flattr month: {month_name(terms)}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _short(key: str) -> str:
    return key if len(key) <= KEY_SHOWN else key[:KEY_SHOWN - 1] + "…"


# A part of a summary: its title (in capitals), its sentences (the first before the list of
# things, the others after it), and the list: its heading, its items and how many things it
# leaves out.
Section = tuple[str, list[str], str, list[str], int]


class SummaryRenderer:
    """Renders the summaries of one month. Sentences hold only amounts, counts and dates;
    what members chose (handles, keys) is escaped in the e-mail."""

    def __init__(self, terms: Terms) -> None:
        self.terms = terms
        self.period = str(terms.period)
        self.month = month_name(terms)
        self.subject = subject_of(terms)
        # Amounts repeat across a month (budgets, fees, equal shares): each formatted once.
        self.money = cache(partial(format_money, currency=terms.currency))
        self.minimum = self.money(terms.minimum_micros)
        self.threshold = self.money(terms.payout_threshold_micros)
        self.hold = _plural(terms.hold_months, "month")
        self.text_head = f"{self.subject}\n\nHi "
        self.statement_url = terms.statement_url
        self.text_foot = f"\n\nYour statement: {self.statement_url}"
        self.body_limit = TEXT_LIMIT - len(self.text_foot)
        self.html_foot = (f'<p><a href="{escape(terms.statement_url)}">Your statement of '
                          f"{self.month}</a></p>")
        self.rules = {"minimum_micros": terms.minimum_micros, "hold_months": terms.hold_months,
                      "payout_threshold_micros": terms.payout_threshold_micros}

    def render(self, member: Figures) -> Message:
        sections = self.sections(member)
        shown = TOP_THINGS
        body = self.body(member, sections, shown)
        while len(body) > self.body_limit and shown > 0:  # only with the longest keys
            shown -= 1
            body = self.body(member, sections, shown)
        if len(body) > self.body_limit:  # a public URL of a thousand characters
            body = body[:max(self.body_limit - 1, 0)] + "…"
        return Message(member.member_id, self.period, KIND, self.subject, self.data(member),
                       body + self.text_foot, self.html(body))

    # -- data

    def data(self, member: Figures) -> dict[str, Any]:
        data: dict[str, Any] = {
            "period": self.period, "currency": self.terms.currency, "handle": member.handle,
            "statement_url": self.statement_url, **self.rules,
            "returned_micros": member.returned_micros,
            "returned_flattrs": member.returned_flattrs, "giving": None, "receiving": None,
        }
        giving, receiving = member.giving, member.receiving
        if giving is not None:
            n = giving.flattr_count
            data["giving"] = {
                "status": giving.status, "flattr_count": n,
                "budget_micros": giving.budget_micros, "balance_micros": giving.balance_micros,
                "charged_micros": giving.charged_micros, "fee_micros": giving.fee_micros,
                "net_micros": giving.net_micros,
                "each_micros": giving.net_micros // n if n else 0,
                "held_micros": giving.held_micros,
                "top": [{"thing": t.key, "creator": t.creator, "amount_micros": t.amount_micros}
                        for t in giving.top],
                "more": n - len(giving.top) if giving.top else 0,
            }
        if receiving is not None:
            data["receiving"] = {
                "received_micros": receiving.paid_micros + receiving.released_micros,
                "paid_micros": receiving.paid_micros,
                "released_micros": receiving.released_micros, "flattrs": receiving.flattrs,
                "givers": receiving.givers, "held_micros": receiving.held_micros,
                "held_flattrs": receiving.held_flattrs,
                "revenue_micros": receiving.revenue_micros,
                "payout_possible":
                    receiving.revenue_micros >= self.terms.payout_threshold_micros,
                "top": [{"thing": t.key, "amount_micros": t.amount_micros, "flattrs": t.flattrs}
                        for t in receiving.top],
                "more": receiving.things - len(receiving.top) if receiving.top else 0,
            }
        return data

    # -- sections

    def sections(self, member: Figures) -> list[Section]:
        sections = []
        if member.giving is not None:
            sections.append(self._giving(member.giving))
        if member.returned_micros:
            sections.append(("BACK TO YOU", [
                f"{self.money(member.returned_micros)} came back to your giving balance: your "
                f"shares of {_plural(member.returned_flattrs, 'flattr')} that nobody claimed "
                f"within {self.hold}."], "", [], 0))
        if member.receiving is not None:
            sections.append(self._receiving(member.receiving))
        return sections

    def _giving(self, giving: Giving) -> Section:
        money, n = self.money, giving.flattr_count
        if giving.status == "idle":
            return ("WHAT YOU GAVE", [
                f"You flattred nothing in {self.month}, so {money(giving.charged_micros)} "
                "of your budget went to charity."], "", [], 0)
        if giving.status == "unfunded":
            return ("YOUR MONTH WAS NOT FUNDED", [self._unfunded(giving)], "", [], 0)
        each, rest = divmod(giving.net_micros, n)
        lines = [
            f"You were charged {money(giving.charged_micros)}. After the fee of "
            f"{money(giving.fee_micros)}, {money(giving.net_micros)} went to your "
            + ("one flattr." if n == 1 else
               f"{n} flattrs: each was worth {'about ' if rest else ''}{money(each)}.")
        ]
        if giving.held_micros:
            lines.append(
                f"{money(giving.held_micros)} of it is held for creators who have not claimed "
                "their things yet, or who did not give this month. It goes to them once they "
                f"do, and back to you after {self.hold} if nobody claims it."
            )
        items = [f"{_short(top.key)} ({top.creator or 'unclaimed'})" for top in giving.top]
        return ("WHAT YOU GAVE", lines, "Your flattrs went to:", items,
                n - len(items) if items else 0)

    def _unfunded(self, giving: Giving) -> str:
        minimum = self.minimum
        if giving.balance_micros < self.terms.minimum_micros:
            why = (f"your giving balance ({self.money(giving.balance_micros)}) was below the "
                   "minimum")
            fix = f"Top up your giving balance to at least {minimum}"
        else:
            why = (f"your monthly budget ({self.money(giving.budget_micros)}) was below the "
                   "minimum" if giving.budget_micros else "you had set no monthly budget")
            fix = f"Set a monthly budget of at least {minimum}"
        return (f"Nothing was charged and your {_plural(giving.flattr_count, 'flattr')} of "
                f"{self.month} did not count: {why} of {minimum}. {fix} so that next month's "
                "flattrs count.")

    def _receiving(self, receiving: Receiving) -> Section:
        money, lines = self.money, []
        received = receiving.paid_micros + receiving.released_micros
        if received or receiving.flattrs:
            line = (f"You received {money(received)} from "
                    f"{_plural(receiving.flattrs, 'flattr')} by "
                    f"{_plural(receiving.givers, 'member')}.")
            if receiving.released_micros:
                line += (f" {money(receiving.released_micros)} of it had been held for you "
                         "until you gave.")
            lines.append(line)
        if receiving.held_micros:
            lines.append(
                f"{money(receiving.held_micros)} from "
                f"{_plural(receiving.held_flattrs, 'flattr')} of your things is held for you "
                f"because you were not an active giver in {self.month}. Give at least "
                f"{self.minimum} next month to receive it; otherwise it goes back to its "
                f"givers after {self.hold}."
            )
        revenue = receiving.revenue_micros
        lines.append(
            f"Your revenue balance is {money(revenue)}: "
            + ("you can ask for a payout." if revenue >= self.terms.payout_threshold_micros
               else f"a payout is possible from {self.threshold}.")
        )
        items = [f"{_short(top.key)} ({money(top.amount_micros)} from "
                 f"{_plural(top.flattrs, 'flattr')})" for top in receiving.top]
        return ("WHAT YOU RECEIVED", lines, "Your top things:", items,
                receiving.things - len(items) if items else 0)

    # -- forms

    def body(self, member: Figures, sections: list[Section], shown: int) -> str:
        """The plain text but its link, with up to `shown` things in each list."""
        parts = [self.text_head + member.handle + ","]
        for title, lines, heading, items, more in sections:
            parts.append(title + "\n" + lines[0])
            if items and shown:
                listed = [heading] + ["• " + item for item in items[:shown]]
                remaining = more + len(items) - len(listed) + 1
                if remaining:
                    listed.append(f"• and {remaining} more")
                parts.append("\n".join(listed))
            parts.extend(lines[1:])
        return "\n\n".join(parts)

    def html(self, body: str) -> str:
        """The e-mail's body (worker/mail.py makes the document): the text's paragraphs and
        lines, escaped (handles, keys), then the link. Mail readers make links of the
        things' addresses by themselves."""
        if "&" in body or "<" in body or ">" in body:
            body = escape(body, quote=False)
        paragraphs = body.replace("\n\n", "</p><p>").replace("\n", "<br>")
        return f"<p>{paragraphs}</p>{self.html_foot}"
