"""CPU time of the processes a benchmark drives, read from /proc over its timed window.

A server is its process and every descendant (`flattr serve --workers N` forks them);
PostgreSQL is split into the backends of the benchmark's database and the server's own
processes (WAL writer, checkpointer...), found through pg_stat_activity. A process born
during the window counts from zero; one that ended during it is lost (none should).
"""

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psycopg

TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the process's name (field 3 onwards); None once
    the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def process_ticks(pid: int) -> int | None:
    """utime + stime of a process and its threads, in clock ticks; None once it is gone."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[11]) + int(fields[12])  # proc(5) 14, 15


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[1])


def process_tree(root: int) -> list[int]:
    parents = {int(entry.name): parent_of(int(entry.name))
               for entry in Path("/proc").iterdir() if entry.name.isdigit()}
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


def postgres_processes(libpq_url: str) -> dict[str, list[int]]:
    """The backends of the URL's database (but the one asking) and the server's own."""
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, backend_type = 'client backend' AND datname = current_database() "
            "FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND (backend_type <> 'client backend' OR datname = current_database())").fetchall()
    return {"backends": [pid for pid, ours in rows if ours],
            "server": [pid for pid, ours in rows if not ours]}


@dataclass
class Sample:
    ticks: dict[int, int]

    @classmethod
    def of(cls, pids: Iterable[int]) -> "Sample":
        return cls({pid: t for pid in pids if (t := process_ticks(pid)) is not None})

    def seconds_since(self, start: "Sample") -> float:
        return sum(t - start.ticks.get(pid, 0) for pid, t in self.ticks.items()) / TICKS


class Window:
    """CPU seconds of groups of processes between `start()` and `stop()`; the groups are
    found again at the stop, so that processes born meanwhile are counted."""

    def __init__(self, groups) -> None:
        self.groups = groups  # a callable giving {name: [pid, ...]}
        self.started: dict[str, Sample] = {}

    def start(self) -> None:
        self.started = {name: Sample.of(pids) for name, pids in self.groups().items()}

    def stop(self) -> dict[str, float]:
        return {name: Sample.of(pids).seconds_since(self.started.get(name, Sample({})))
                for name, pids in self.groups().items()}
