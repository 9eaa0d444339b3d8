"""Fixtures every suite shares."""

from __future__ import annotations

import time

import pytest


@pytest.fixture
def host_zone(monkeypatch):
    """Set the host's zone (TZ, for the configuration, which reads it, and for the C library,
    which local times use: snapshots.py's names, log lines and `{timestamp}`); None unsets it.
    The old zone is back after the test."""

    def set_zone(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv("TZ", raising=False)
        else:
            monkeypatch.setenv("TZ", value)
        time.tzset()

    yield set_zone
    monkeypatch.undo()
    time.tzset()
