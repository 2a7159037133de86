"""The Discord bot's fixtures, from discord_harness: a module name of its own, which the
tests import (each folder's conftest is a module called conftest, and one hides another)."""

from discord_harness import *  # noqa: F403
