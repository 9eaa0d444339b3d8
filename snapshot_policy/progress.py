"""What apply is doing right now, per target: a live table on a terminal, plain lines in cron.

A snapshot can take many minutes; a person at a terminal should see which servers are
still being created, and a cron log should show when each stage started. The executor
calls `progress(target, stage)` from its worker threads. Only names and ids are shown,
never anything from the configuration that could be a secret.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from snapshot_policy.model import Target

FINISHED = ("done", "failed")
STAGE_STYLES = {
    "listing": "cyan",
    "waiting": "dim",
    "creating": "yellow",
    "deleting": "magenta",
    "done": "green",
    "failed": "bold red",
}


@dataclass
class _Row:
    target: Target
    stage: str
    since: float
    """When the target's first stage began (the clock's time), for the time column."""
    ended: float | None = None


class ApplyProgress:
    """Shows each target's stage: a live-updating table when `stream` is a terminal, else one
    line per stage change (`web: web-1 (digitalocean server 3164444): creating`).

    `force_terminal` overrides the terminal check (True: table, False: lines). Use as a
    context manager around apply, or call `start()` and `stop()`; safe to call from threads.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        force_terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream or sys.stderr
        self.live = force_terminal if force_terminal is not None else _is_tty(self._stream)
        self._clock = clock
        self._rows: dict[tuple[str, str, str, str], _Row] = {}
        self._lock = threading.Lock()
        self._display: Live | None = None
        if self.live:
            console = Console(file=self._stream, force_terminal=True, highlight=False)
            # No stdout/stderr redirection: nothing else prints during apply, and a global
            # swap of sys.stderr would outlive a display that is never stopped.
            self._display = Live(console=console, get_renderable=self.table, refresh_per_second=4,
                                 redirect_stdout=False, redirect_stderr=False)

    def start(self) -> ApplyProgress:
        if self._display is not None:
            self._display.start()
        return self

    def stop(self) -> None:
        """Stop updating; the table stays on screen in its final state."""
        if self._display is not None:
            self._display.stop()

    def __enter__(self) -> ApplyProgress:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __call__(self, target: Target, stage: str) -> None:
        """Record that `target` reached `stage`; a repeated stage is shown once."""
        key = (target.name, target.provider, target.account, target.server_id)
        with self._lock:
            row = self._rows.get(key)
            if row is not None and row.stage == stage:
                return
            if row is None:
                row = self._rows[key] = _Row(target, stage, self._clock())
            row.stage = stage
            row.ended = self._clock() if stage in FINISHED else None
            if not self.live:
                self._stream.write(f"{describe(target)}: {stage}\n")
                self._stream.flush()
        if self._display is not None and self._display.is_started:
            self._display.refresh()

    def table(self) -> Table:
        """Return the current stages as a table: one row per target, a count in the caption."""
        with self._lock:
            rows = sorted(self._rows.values(), key=lambda r: (r.target.name, r.target.server_name, r.target.server_id))
            now = self._clock()
        finished = sum(r.stage in FINISHED for r in rows)
        failed = sum(r.stage == "failed" for r in rows)
        caption = f"{finished} of {len(rows)} finished" + (f", {failed} failed" if failed else "")
        table = Table(title="snapshot-policy apply", caption=caption, caption_justify="left")
        for column in ("target", "server", "stage"):
            table.add_column(column)
        table.add_column("time", justify="right")
        for row in rows:
            target = row.target
            table.add_row(
                Text(target.name),
                Text(f"{target.server_name} ({target.provider} {target.server_id})"),
                Text(row.stage, style=STAGE_STYLES.get(row.stage, "")),
                _elapsed((now if row.ended is None else row.ended) - row.since),
            )
        return table


def describe(target: Target) -> str:
    """`web: web-1 (digitalocean server 3164444)`, as the apply report names targets."""
    return f"{target.name}: {target.server_name} ({target.provider} server {target.server_id})"


def _elapsed(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
