"""Settings read from the environment: valid values are taken, bad ones refused clearly."""

import pytest
from pydantic import ValidationError

from core.settings import Settings


@pytest.mark.parametrize("memory", ["1GB", "512MB", "65536kB"])
def test_settlement_memory_takes_postgresql_sizes(monkeypatch, memory):
    monkeypatch.setenv("FLATTR_SETTLEMENT_MEMORY", memory)
    assert Settings().settlement_memory == memory


@pytest.mark.parametrize("memory", ["lots", "1 GB", "0MB", "1TB", "1GB'; DROP TABLE shares; --"])
def test_settlement_memory_refuses_anything_else(monkeypatch, memory):
    monkeypatch.setenv("FLATTR_SETTLEMENT_MEMORY", memory)
    with pytest.raises(ValidationError, match="settlement_memory"):
        Settings()
