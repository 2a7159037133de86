"""SVG charts drawn on the server: no scripts, readable without colour (labels on every bar).

Every text is escaped; amounts are integers of micro-units scaled to whole pixels.
"""

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup, escape

INK = "#1b1b1f"
MUTED = "#4a4a55"
COLOURS = {"fee": "#6b4e16", "paid": "#0b5e33", "held": "#8a3b12", "released": "#0a4f8f",
           "returned": "#5b3d8f", "given": "#8a3b12", "received": "#0b5e33"}
WIDTH = 640
LABEL_WIDTH = 220
AMOUNT_WIDTH = 110
BAR_HEIGHT = 22
GAP = 8


@dataclass(frozen=True)
class Bar:
    label: str
    amount_micros: int
    kind: str  # a key of COLOURS


def _scale(amount: int, largest: int, width: int) -> int:
    return 0 if largest <= 0 else max(1 if amount > 0 else 0, amount * width // largest)


def where_it_went(bars: list[Bar], title: str, money: Callable[[int], str]) -> Markup:
    """One horizontal bar a destination: the fee, each receiver, what is held."""
    bar_room = WIDTH - LABEL_WIDTH - AMOUNT_WIDTH
    largest = max((b.amount_micros for b in bars), default=0)
    height = max(1, len(bars)) * (BAR_HEIGHT + GAP) + GAP
    rows = []
    for index, bar in enumerate(bars):
        y = GAP + index * (BAR_HEIGHT + GAP)
        width = _scale(bar.amount_micros, largest, bar_room)
        rows.append(
            f'<text x="{LABEL_WIDTH - 8}" y="{y + 16}" text-anchor="end" fill="{INK}">'
            f"{escape(_shorten(bar.label))}</text>"
            f'<rect x="{LABEL_WIDTH}" y="{y}" width="{width}" height="{BAR_HEIGHT}" '
            f'fill="{COLOURS[bar.kind]}"><title>{escape(bar.label)}: '
            f"{escape(money(bar.amount_micros))}</title></rect>"
            f'<text x="{LABEL_WIDTH + width + 6}" y="{y + 16}" fill="{INK}">'
            f"{escape(money(bar.amount_micros))}</text>"
        )
    if not bars:
        rows.append(f'<text x="8" y="20" fill="{MUTED}">Nothing this month.</text>')
    return _svg(title, WIDTH, height, "".join(rows), "where-chart")


def months(history: list[tuple[str, int, int]], title: str, money: Callable[[int], str]
           ) -> Markup:
    """Given and received a month (period, given, received), side by side, oldest first."""
    top, bottom, left = 16, 40, 8
    plot_height = 160
    slot = (WIDTH - left) // max(1, len(history))
    bar = max(4, (slot - 10) // 2)
    largest = max((max(g, r) for _, g, r in history), default=0)
    parts = []
    for index, (period, given, received) in enumerate(history):
        x = left + index * slot
        for offset, (kind, amount) in enumerate((("given", given), ("received", received))):
            height = _scale(amount, largest, plot_height)
            parts.append(
                f'<rect x="{x + offset * bar}" y="{top + plot_height - height}" width="{bar - 1}"'
                f' height="{height}" fill="{COLOURS[kind]}"><title>{escape(period)} {kind}: '
                f"{escape(money(amount))}</title></rect>"
            )
        parts.append(f'<text x="{x + bar}" y="{top + plot_height + 16}" text-anchor="middle" '
                     f'font-size="11" fill="{INK}">{escape(period[2:])}</text>')
    legend_y = top + plot_height + 34
    parts.append(
        f'<rect x="{left}" y="{legend_y - 10}" width="12" height="12" fill="{COLOURS["given"]}"/>'
        f'<text x="{left + 18}" y="{legend_y}" fill="{INK}">given</text>'
        f'<rect x="{left + 90}" y="{legend_y - 10}" width="12" height="12" '
        f'fill="{COLOURS["received"]}"/>'
        f'<text x="{left + 108}" y="{legend_y}" fill="{INK}">received</text>'
        f'<text x="{WIDTH - 8}" y="{legend_y}" text-anchor="end" fill="{MUTED}">largest: '
        f"{escape(money(largest))}</text>"
    )
    return _svg(title, WIDTH, top + plot_height + bottom + 8, "".join(parts), "months-chart")


def _svg(title: str, width: int, height: int, body: str, name: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}"'
        f' height="{height}" role="img" aria-labelledby="{name}-title" data-testid="{name}" '
        f'font-family="system-ui, sans-serif" font-size="13">'
        f'<title id="{name}-title">{escape(title)}</title>{body}</svg>'
    )


def _shorten(text: str, limit: int = 30) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]
