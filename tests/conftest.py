"""Fixtures every suite shares."""

from __future__ import annotations

import logging
import time

import pytest

from snapshot_policy.output.logs import SDK_LOGGERS


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


@pytest.fixture(autouse=True)
def logging_as_it_was():
    """A CLI run in-process installs its log handlers for the rest of the process, as one run
    per process wants; between tests they are taken down again. Left installed, their
    masking filter would strip the traceback from a record a later test collects."""
    loggers = [logging.getLogger(name) for name in ("snapshot_policy", *SDK_LOGGERS)]
    before = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    yield
    for logger, handlers, level, propagate in before:
        for handler in set(logger.handlers) - set(handlers):
            logger.removeHandler(handler)
            handler.close()
        logger.setLevel(level)
        logger.propagate = propagate
