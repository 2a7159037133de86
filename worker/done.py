"""What one piece of work did: its counts, and the one log line that says so."""

import logging
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("flattr.worker")


@dataclass(frozen=True)
class Done:
    work: str  # "settle", "reminders", "email"
    line: str  # what the log says, e.g. "settled 2026-11: 6 stages, 120 givers, …"
    counts: dict[str, Any] = field(default_factory=dict)
    failed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"work": self.work, **self.counts, "failed": self.failed, "line": self.line}


def logged(done: Done) -> Done:
    (log.error if done.failed else log.info)(done.line)
    return done


def failure(work: str, what: str, error: BaseException) -> Done:
    """A piece of work that raised: logged with its traceback, reported, the rest goes on."""
    reason = f"{type(error).__name__}: {error}"[:300]
    done = Done(work, f"{what} failed: {reason}", {"error": reason}, failed=True)
    log.error(done.line, exc_info=error)
    return done
