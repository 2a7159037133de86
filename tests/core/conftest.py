"""Fixtures of the core's tests."""

import pytest

from world import World


@pytest.fixture
def world(engine, settings) -> World:
    """Members, claims, flattrs and settlements of a scenario, on the test's backend."""
    return World(engine, settings)
