"""Counters and latency histograms, written in the Prometheus text format."""

from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from core.outbox_metrics import render_outbox_depth
from gateway.pauses import Pauses

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass
class Metrics:
    requests: Counter = field(default_factory=Counter)
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    latency_sum: float = 0.0
    latency_count: int = 0
    database_errors: int = 0
    flattrs_created: int = 0
    flattr_batches: int = 0  # writes of the click path's batcher
    flattr_batch_requests: int = 0  # requests those writes carried
    outbox_scrape_errors: int = 0  # scrapes that could not read the outbox's depth
    pauses: Pauses = field(default_factory=Pauses)  # the event loop's and the collector's

    def observe(self, request: web.Request, status: int, seconds: float) -> None:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        self.requests[(request.method, name, status)] += 1
        self.latency_sum += seconds
        self.latency_count += 1
        # Cumulative buckets: the first that holds it and every larger one count it.
        for i in range(bisect_left(BUCKETS, seconds), len(BUCKETS)):
            self.latency_buckets[i] += 1

    def render(self) -> str:
        lines = [
            "# HELP flattr_http_requests_total HTTP requests answered.",
            "# TYPE flattr_http_requests_total counter",
        ]
        for (method, route, status), count in sorted(self.requests.items()):
            lines.append(
                f'flattr_http_requests_total{{method="{method}",route="{route}",'
                f'status="{status}"}} {count}'
            )
        lines += [
            "# HELP flattr_http_request_seconds Time to answer a request.",
            "# TYPE flattr_http_request_seconds histogram",
        ]
        for bound, count in zip(BUCKETS, self.latency_buckets, strict=True):
            lines.append(f'flattr_http_request_seconds_bucket{{le="{bound}"}} {count}')
        lines += [
            f'flattr_http_request_seconds_bucket{{le="+Inf"}} {self.latency_count}',
            f"flattr_http_request_seconds_sum {self.latency_sum:.6f}",
            f"flattr_http_request_seconds_count {self.latency_count}",
            "# TYPE flattr_database_errors_total counter",
            f"flattr_database_errors_total {self.database_errors}",
            "# TYPE flattr_flattrs_created_total counter",
            f"flattr_flattrs_created_total {self.flattrs_created}",
            "# HELP flattr_flattr_batches_total Batched writes of the click path.",
            "# TYPE flattr_flattr_batches_total counter",
            f"flattr_flattr_batches_total {self.flattr_batches}",
            "# HELP flattr_flattr_batch_requests_total Flattr requests in those writes.",
            "# TYPE flattr_flattr_batch_requests_total counter",
            f"flattr_flattr_batch_requests_total {self.flattr_batch_requests}",
        ]
        return "\n".join(lines) + "\n" + self.pauses.render()

    def render_outbox(self, depth: dict[str, Any] | None, error: str | None = None) -> str:
        """The outbox's unsent deliveries by state and the age of the oldest one due, read
        at scrape time (core.outbox.depth); None when the database did not answer."""
        lines = [
            "# HELP flattr_outbox_scrape_errors_total Scrapes without the outbox's depth.",
            "# TYPE flattr_outbox_scrape_errors_total counter",
            f"flattr_outbox_scrape_errors_total {self.outbox_scrape_errors}",
        ]
        if depth is None:
            return "\n".join([*lines, f"# flattr_outbox_messages unavailable: {error}"]) + "\n"
        return "\n".join(lines) + "\n" + render_outbox_depth(depth)
