"""The one place apprise is loaded, and its logger held (issue 21, item 12): config reads an
apprise channel's URLs with it when the policy loads, edges send through it, and core is the
one layer both stand on (tests/unit/test_layers.py).

Nothing of the core calls these, and importing this module loads nothing: apprise is imported
by name, when `load` is first called, so the pure core, and every run without an apprise
channel, never pays for it (a third of a second). Its logger is kept from every handler while
it works: what it says may quote a URL, which is a secret (docs/promises.md §5).
"""

from __future__ import annotations

import functools
import importlib
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

LOGGER = "apprise"


@functools.cache
def load() -> tuple[ModuleType, Any]:
    """apprise and its plugins (its `NotificationManager`, one for the process), loaded once,
    before any thread needs them: warnings filters are process state, not for threads to
    change; a thread's call finds them loaded. Some
    plugin imports a module Python deprecates; that warning is apprise's to fix, not the
    user's to read. Raises ImportError when apprise is not installed."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        apprise = importlib.import_module("apprise")
        plugins = importlib.import_module("apprise.manager_plugins").NotificationManager()
        with quiet():
            plugins.load_modules()
    return apprise, plugins


@dataclass(frozen=True)
class Held:
    """apprise's logger as it was before `hold`: `release` gives it back."""

    propagate: bool
    level: int
    handlers: tuple[logging.Handler, ...]
    disabled: bool

    def release(self, *, silenced: bool = False) -> None:
        """Give the logger its handlers and level back; `silenced` keeps it from them all the
        same (not propagating, disabled): a thread apprise still runs may log after the run."""
        logger = logging.getLogger(LOGGER)
        logger.handlers = list(self.handlers)
        logger.setLevel(self.level)
        logger.propagate = False if silenced else self.propagate
        logger.disabled = True if silenced else self.disabled


def hold(*handlers: logging.Handler, level: int | None = None) -> Held:
    """Take apprise's logger off every handler but `handlers` (none: silent), not propagating
    to the root's; return how it was."""
    logger = logging.getLogger(LOGGER)
    held = Held(logger.propagate, logger.level, tuple(logger.handlers), logger.disabled)
    logger.propagate, logger.handlers, logger.disabled = False, list(handlers), not handlers
    if level is not None:
        logger.setLevel(level)
    return held


@contextmanager
def quiet() -> Iterator[None]:
    """Keep apprise's logger from every handler for the block: its lines may quote a URL."""
    held = hold()
    try:
        yield
    finally:
        held.release()
