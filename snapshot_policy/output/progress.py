"""What apply is doing right now, per target: a live table on a terminal, plain lines in cron.

A snapshot can take many minutes; a person at a terminal should see which servers are
still being created, and a cron log should show when each stage started. The executor
calls `progress(target, stage)` from its worker threads. Only names and ids are shown,
never anything from the configuration that could be a secret, and names as escapes where they
hold line breaks, controls or invisible characters (`redaction.escape_controls`): a server name
from an API must not split a line, nor turn or hide the id after it.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from snapshot_policy.core.model import Target
from snapshot_policy.core.redaction import escape_controls
from snapshot_policy.output.logs import is_terminal, stamp, write_console

FINISHED = ("done", "failed")
UNEVENTFUL = ("waiting", "done")
"""The stages of a target with nothing due: lines made of only these may be held back."""
STAGE_STYLES = {
    "listing": "cyan",
    "waiting": "dim",
    "creating": "yellow",
    "copying": "blue",
    "deleting": "magenta",
    "done": "green",
    "failed": "bold red",
}
MAX_ROWS = 20
"""Rows the live table shows at most; beyond that it shows a window and counts the rest."""


@dataclass
class _Row:
    target: Target
    stage: str
    since: float
    """When the target's first stage began (the clock's time), for the time column."""
    ended: float | None = None


_Key = tuple[str, str, str, str]


class ApplyProgress:
    """Shows each target's stage: a live-updating table when `stream` is a terminal, else one
    line per stage change (`web: web-1 (digitalocean server 3164444): creating`).

    With `now` (the run's clock, handed down by the CLI), each line starts with the time of its
    stage change (`[2026-12-07 03:00:12] web: …`, logs.STAMP_FORMAT), so a cron mail or syslog
    says when each stage began.

    `force_terminal` overrides the terminal check (True: table, False: lines). Use as a
    context manager around apply, or call `start()` and `stop()`; safe to call from threads.

    With `hold`, the lines are held back while every stage so far is waiting or done, and
    written, in order, once another stage comes or `release()` is called: a run with nothing
    due writes no line unless the caller asks (cron mails nothing for it), and a run that does
    something writes the same lines as without `hold`.

    A stage change costs the same however many targets there are: it updates a dict and a few
    counters, and never draws. The table is redrawn by rich's own thread `refresh_per_second`
    times a second (and once more on `stop()`), and it shows at most `max_rows` targets: all of
    them when there are that few, else the running ones, then failed ones, then the most
    recently finished, with the rest counted in a last row and the caption.
    """

    def __init__(
        self,
        stream: TextIO | None = None,
        force_terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
        refresh_per_second: float = 4,
        max_rows: int = MAX_ROWS,
        hold: bool = False,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._stream = stream or sys.stderr
        self._now = now
        self._held: list[str] | None = [] if hold else None
        """The lines held back (see `hold`); None once they are written, or never held."""
        self.live = force_terminal if force_terminal is not None else is_terminal(self._stream)
        self._clock = clock
        self._max_rows = max(1, max_rows)
        self._rows: dict[_Key, _Row] = {}
        self._counts: Counter[str] = Counter()
        # Windows onto `_rows`, updated per stage change so a redraw never scans every target:
        # running (neither waiting nor finished) in the order they started, failed in the
        # order they failed, and the most recently done.
        self._running: OrderedDict[_Key, None] = OrderedDict()
        self._failed: OrderedDict[_Key, None] = OrderedDict()
        self._recent: OrderedDict[_Key, None] = OrderedDict()
        self._lock = threading.Lock()
        self._display: Live | None = None
        if self.live:
            console = Console(file=self._stream, force_terminal=True, highlight=False)
            # No stdout/stderr redirection: nothing else prints during apply, and a global
            # swap of sys.stderr would outlive a display that is never stopped.
            self._display = Live(
                console=console,
                get_renderable=self.table,
                auto_refresh=True,
                refresh_per_second=refresh_per_second,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            # Title, borders, header, caption and the "more" row take 7 lines; keep the whole
            # table on screen, or rich crops its bottom (the counts) with an ellipsis.
            self._max_rows = max(1, min(self._max_rows, console.height - 7))

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
            else:
                self._forget(key, row.stage)
            row.stage = stage
            row.ended = self._clock() if stage in FINISHED else None
            self._counts[stage] += 1
            if stage == "failed":
                self._failed[key] = None
            elif stage == "done":
                self._recent[key] = None
                if len(self._recent) > self._max_rows:
                    self._recent.popitem(last=False)
            elif stage != "waiting":
                self._running[key] = None
            if not self.live:
                self._write(self._stamped(f"{describe(target)}: {stage}\n"), stage in UNEVENTFUL)

    def note(self, line: str) -> None:
        """Write `line` among the stage lines (not on a terminal), held back as they are."""
        if not self.live:
            with self._lock:
                self._write(self._stamped(line + "\n"), held=True)

    def _stamped(self, line: str) -> str:
        return f"{stamp(self._now())} {line}" if self._now is not None else line

    def release(self) -> None:
        """Write the lines held back so far, and every later line at once."""
        with self._lock:
            self._write("", held=False)

    def _write(self, line: str, held: bool) -> None:
        """Write `line` (under the lock), or hold it back while every line so far is `held`."""
        if self._held is not None:
            self._held.append(line)
            if held:
                return
            line, self._held = "".join(self._held), None
        if line:
            write_console(self._stream, line)  # a console nobody reads does not end the run

    def _forget(self, key: _Key, stage: str) -> None:
        self._counts[stage] -= 1
        for window in (self._running, self._failed, self._recent):
            window.pop(key, None)

    def table(self) -> Table:
        """Return the current stages as a table: one row per target when there are at most
        `max_rows`, else a window of them and a count of the rest; totals in the caption."""
        with self._lock:
            now = self._clock()
            total = len(self._rows)
            counts = dict(self._counts)
            if total <= self._max_rows:
                rows = sorted(
                    self._rows.values(),
                    key=lambda r: (r.target.name, r.target.server_name, r.target.server_id),
                )
            else:
                keys = list(islice(self._running, self._max_rows))
                keys += islice(self._failed, self._max_rows - len(keys))
                keys += islice(reversed(self._recent), self._max_rows - len(keys))
                rows = [self._rows[key] for key in keys]
            shown = [
                (r.target, r.stage, (now if r.ended is None else r.ended) - r.since) for r in rows
            ]
        finished = sum(counts.get(stage, 0) for stage in FINISHED)
        failed = counts.get("failed", 0)
        caption = f"{finished} of {total} finished" + (f", {failed} failed" if failed else "")
        if total > self._max_rows:
            waiting = counts.get("waiting", 0)
            caption += f", {total - finished - waiting} running, {waiting} waiting"
        table = Table(title="snapshot-policy apply", caption=caption, caption_justify="left")
        for column in ("target", "server", "stage"):
            table.add_column(column)
        table.add_column("time", justify="right")
        for target, stage, seconds in shown:
            table.add_row(
                Text(escape_controls(target.name)),
                Text(
                    escape_controls(f"{target.server_name} ({target.provider} {target.server_id})")
                ),
                Text(stage, style=STAGE_STYLES.get(stage, "")),
                _elapsed(seconds),
            )
        if len(shown) < total:
            hidden = Counter(counts)
            hidden.subtract(stage for _, stage, _ in shown)
            rest = ", ".join(f"{n} {stage}" for stage, n in sorted(hidden.items()) if n > 0)
            table.add_row(
                Text(f"… {total - len(shown)} more", style="dim"),
                Text(rest, style="dim"),
                Text(""),
                "",
            )
        return table


def describe(target: Target) -> str:
    """`web: web-1 (digitalocean server 3164444)`, as the apply report names targets, on one
    line."""
    where = f"server {target.server_id}"
    if target.volume_of:  # volumes: true, as the report names it
        where = f"volume {target.server_id} of droplet {target.volume_of}"
    return escape_controls(f"{target.name}: {target.server_name} ({target.provider} {where})")


def _elapsed(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{rest}s"
