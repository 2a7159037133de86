"""Fixtures of the worker's tests."""

import pytest

from smtp_server import smtp_server
from world import World


@pytest.fixture
def world(engine, settings) -> World:
    return World(engine, settings)


@pytest.fixture
def smtp():
    """(mailbox, smtp_url) of a real SMTP server on 127.0.0.1."""
    with smtp_server() as running:
        yield running
