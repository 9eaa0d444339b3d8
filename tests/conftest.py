"""Fixtures every suite shares."""

from __future__ import annotations

import logging
import os
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


def pytest_collection_modifyitems(config, items) -> None:
    """Under libfaketime (CI's run with the clock 400 days ahead) a thread's timed wait is
    given a deadline on the moved monotonic clock and waits out the whole offset: the tests
    that need such a wait to run out are skipped there, and run in every other run."""
    if "faketime" not in os.environ.get("LD_PRELOAD", ""):
        return
    skip = pytest.mark.skip(reason="libfaketime makes a timed thread wait last its offset")
    for item in items:
        if "timed_waits" in item.keywords:
            item.add_marker(skip)
