"""What a bot's command (`flattr bot discord`, …) needs to start: settings read once, any
problem said in one line on standard error (exit code 2, no traceback), and a run until
SIGINT or SIGTERM."""

import asyncio
import contextlib
import signal
import sys
from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

USAGE = 2
Settings = TypeVar("Settings", bound=BaseSettings)


def settings_or_say(make: Callable[[], Settings], command: str,
                    needed: Iterable[tuple[str, str]]) -> Settings | None:
    """The settings; or None, after one line naming the variable that is wrong or missing
    (`needed`: each field that must be set, and how to get its value)."""
    try:
        settings = make()
    except ValidationError as error:
        problem = error.errors()[0]
        name = f"FLATTR_{str(problem['loc'][0]).upper()}"
        if isinstance(problem.get("input"), str) and not problem["input"].strip():
            print(f"{command}: {name} is empty: set it, or leave it out for its default",
                  file=sys.stderr)
        else:
            print(f"{command}: {name}: {problem['msg']}", file=sys.stderr)
        return None
    for name, how in needed:
        if getattr(settings, name) is None:
            print(f"{command}: set FLATTR_{name.upper()} to {how}", file=sys.stderr)
            return None
    return settings


def run_until_stopped(serve: Callable[[Settings, asyncio.Event], Awaitable[None]],
                      settings: Settings) -> None:
    """`serve(settings, stop)` in a new event loop; SIGINT and SIGTERM set `stop`."""

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, stop.set)
        await serve(settings, stop)

    asyncio.run(run())
