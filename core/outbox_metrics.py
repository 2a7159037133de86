"""The outbox's depth (core.outbox.depth) as Prometheus gauges, for every /metrics that shows
it: the gateway's and the worker's own port."""

from typing import Any


def render_outbox_depth(depth: dict[str, Any]) -> str:
    """`flattr_outbox_messages{state=…}` (unsent deliveries by state) and
    `flattr_outbox_oldest_pending_seconds`, in the Prometheus text format."""
    lines = [
        "# HELP flattr_outbox_messages Deliveries of the outbox not sent, by state.",
        "# TYPE flattr_outbox_messages gauge",
        *(f'flattr_outbox_messages{{state="{state}"}} {count}'
          for state, count in depth["states"].items()),
        "# HELP flattr_outbox_oldest_pending_seconds Age of the oldest delivery waiting.",
        "# TYPE flattr_outbox_oldest_pending_seconds gauge",
        f"flattr_outbox_oldest_pending_seconds {depth['oldest_pending_seconds']:.3f}",
    ]
    return "\n".join(lines) + "\n"
