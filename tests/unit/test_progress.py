"""ApplyProgress: plain lines for cron, a live table on a terminal, safe from worker threads."""

from __future__ import annotations

import io
import threading
from datetime import datetime, timezone

from rich.console import Console

from snapshot_policy.core.model import RetentionPolicy, Target
from snapshot_policy.output.progress import ApplyProgress

WEB = Target("web", "digitalocean", "do", "3164444", "web-1", RetentionPolicy(keep_last=3))
DB = Target("databases", "hetzner", "hz", "42", "db-1", RetentionPolicy(keep_daily=7))


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def rendered(progress: ApplyProgress) -> str:
    out = io.StringIO()
    Console(file=out, width=100, force_terminal=False).print(progress.table())
    return out.getvalue()


def test_progress_writes_one_line_per_stage_change_when_not_a_terminal():
    stream = io.StringIO()
    with ApplyProgress(stream) as progress:
        for stage in ("waiting", "waiting", "creating", "deleting", "done"):
            progress(WEB, stage)
        progress(DB, "waiting")
        progress(DB, "failed")
    assert stream.getvalue() == (
        "web: web-1 (digitalocean server 3164444): waiting\n"
        "web: web-1 (digitalocean server 3164444): creating\n"
        "web: web-1 (digitalocean server 3164444): deleting\n"
        "web: web-1 (digitalocean server 3164444): done\n"
        "databases: db-1 (hetzner server 42): waiting\n"
        "databases: db-1 (hetzner server 42): failed\n"
    )


def test_progress_chooses_the_table_for_a_terminal_unless_told_otherwise():
    assert ApplyProgress(FakeTerminal()).live
    assert not ApplyProgress(FakeTerminal(), force_terminal=False).live
    assert ApplyProgress(io.StringIO(), force_terminal=True).live
    assert not ApplyProgress(io.StringIO()).live


def test_progress_on_a_terminal_draws_a_row_per_target_and_no_plain_lines():
    stream = io.StringIO()
    with ApplyProgress(stream, force_terminal=True) as progress:
        progress(WEB, "creating")
        progress(DB, "listing")
        progress(DB, "failed")
    screen = stream.getvalue()
    assert "\x1b[" in screen  # drawn for a terminal, with colours
    for text in (
        "snapshot-policy apply",
        "web-1 (digitalocean 3164444)",
        "creating",
        "db-1 (hetzner 42)",
        "failed",
        "1 of 2 finished, 1 failed",
    ):
        assert text in screen
    assert "web: web-1 (digitalocean server 3164444): creating" not in screen


def test_progress_table_counts_time_until_a_target_finishes():
    now = [0.0]
    progress = ApplyProgress(io.StringIO(), force_terminal=False, clock=lambda: now[0])
    progress(WEB, "waiting")
    progress(DB, "waiting")
    now[0] = 65.0
    progress(WEB, "done")
    now[0] = 200.0
    table = rendered(progress)
    web_row = next(line for line in table.splitlines() if "web-1" in line)
    db_row = next(line for line in table.splitlines() if "db-1" in line)
    assert "done" in web_row and "1m05s" in web_row
    assert "waiting" in db_row and "3m20s" in db_row
    assert "1 of 2 finished" in table
    assert table.index("databases") < table.index("web-1")  # rows sorted by target name


def test_progress_keeps_lines_whole_when_called_from_many_threads():
    stream = io.StringIO()
    progress = ApplyProgress(stream)
    targets = [
        Target("web", "hetzner", "hz", str(i), f"web-{i}", RetentionPolicy(keep_last=1))
        for i in range(16)
    ]

    def work(target: Target) -> None:
        for stage in ("waiting", "creating", "deleting", "done"):
            progress(target, stage)

    threads = [threading.Thread(target=work, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 16 * 4
    for target in targets:
        own = [line for line in lines if line.startswith(f"web: {target.server_name} (")]
        assert own == [
            f"web: {target.server_name} (hetzner server {target.server_id}): {s}"
            for s in ("waiting", "creating", "deleting", "done")
        ]


def many(size: int) -> list[Target]:
    return [
        Target(
            f"t{i // 10:03d}",
            "hetzner",
            "hz",
            str(1000 + i),
            f"srv-{i}",
            RetentionPolicy(keep_last=1),
        )
        for i in range(size)
    ]


def test_progress_updates_never_draw_and_each_draw_is_bounded_whatever_the_number_of_targets(
    monkeypatch,
):
    """A stage change must not re-render every row: N updates cost O(N), not O(N²)."""
    built: list[int] = []
    original = ApplyProgress.table

    def counting(self: ApplyProgress):
        table = original(self)
        built.append(table.row_count)
        return table

    monkeypatch.setattr(ApplyProgress, "table", counting)
    for size in (50, 400):
        built.clear()
        stream = io.StringIO()
        # A refresh period far longer than the test: only stop() draws.
        with ApplyProgress(
            stream, force_terminal=True, refresh_per_second=0.001, max_rows=10
        ) as progress:
            for target in many(size):
                for stage in ("waiting", "creating", "deleting", "done"):
                    progress(target, stage)
        # 4 × size updates, no draw of their own: rich's on start and stop() only
        assert len(built) <= 2
        assert max(built) <= 11  # the window (10 rows) and one "… more" row, not one row per target
        assert f"{size} of {size} finished" in stream.getvalue()

    # Not a terminal: one line per update and no table at all.
    built.clear()
    stream = io.StringIO()
    with ApplyProgress(stream) as progress:
        for target in many(400):
            progress(target, "waiting")
    assert built == [] and len(stream.getvalue().splitlines()) == 400


def test_progress_table_over_many_targets_shows_running_then_failed_then_recent_and_counts_rest():
    progress = ApplyProgress(io.StringIO(), force_terminal=False, max_rows=6)
    targets = many(100)
    for target in targets:
        progress(target, "waiting")
    for target in targets[:40]:
        progress(target, "creating")
    for target in targets[:37]:
        progress(target, "done")
    progress(targets[37], "failed")  # running: srv-38, srv-39
    table = progress.table()
    assert table.row_count == 7
    screen = rendered(progress)
    lines = [line for line in screen.splitlines() if "srv-" in line]
    assert [line.split("(")[0].split()[-1] for line in lines] == [
        "srv-38",
        "srv-39",
        "srv-37",
        "srv-36",
        "srv-35",
        "srv-34",
    ]
    assert "creating" in lines[0] and "failed" in lines[2] and "done" in lines[3]
    assert "… 94 more" in screen and "34 done, 60 waiting" in screen
    assert "38 of 100 finished, 1 failed, 2 running, 60 waiting" in screen

    # A target that moves on leaves its old window: no duplicates, counts stay right.
    progress(targets[38], "done")
    progress(targets[37], "creating")  # a retried target is running again
    screen = rendered(progress)
    assert [line.split("(")[0].split()[-1] for line in screen.splitlines() if "srv-" in line][
        :3
    ] == ["srv-39", "srv-37", "srv-38"]
    assert "38 of 100 finished, 2 running, 60 waiting" in screen


def test_progress_table_fits_a_short_terminal():
    stream = io.StringIO()
    progress = ApplyProgress(stream, force_terminal=True, max_rows=50)
    assert progress._max_rows == Console(file=stream, force_terminal=True).height - 7


HOSTILE = Target(
    "web\u202e",
    "digitalocean",
    "do",
    "3164444",
    "web-1\u202e\u200b\nforged: done",
    RetentionPolicy(keep_last=3),
)


def test_progress_lines_show_a_name_s_line_breaks_and_invisible_characters_as_escapes():
    stream = io.StringIO()
    with ApplyProgress(stream) as progress:
        progress(HOSTILE, "creating")
    assert stream.getvalue() == (
        "web\\u202e: web-1\\u202e\\u200b\\nforged: done (digitalocean server 3164444): creating\n"
    )


def test_progress_table_shows_a_name_s_line_breaks_and_invisible_characters_as_escapes():
    progress = ApplyProgress(FakeTerminal(), force_terminal=True)
    progress(HOSTILE, "creating")
    table = rendered(progress)
    assert "web-1\\u202e\\u200b\\nforged: done (digitalocean 3164444)" in table
    assert not {"\u202e", "\u200b"} & set(table)


def test_lines_start_with_the_local_time_of_their_stage_and_notes_are_held_with_them(
    host_zone,
):
    """Under cron each line says when (issue 21, item 4): the time the run's clock gave at the
    stage change, in local time; a note waits, as waiting lines do, for something to happen."""
    host_zone("Europe/Berlin")
    moments = iter(datetime(2025, 1, 1, 2, 0, s, tzinfo=timezone.utc) for s in range(10))
    stream = io.StringIO()
    progress = ApplyProgress(stream, force_terminal=False, hold=True, now=lambda: next(moments))
    progress.note("Starting snapshot management script...")
    progress(WEB, "waiting")
    assert stream.getvalue() == ""
    progress(WEB, "creating")
    assert stream.getvalue() == (
        "[2025-01-01 03:00:00] Starting snapshot management script...\n"
        "[2025-01-01 03:00:01] web: web-1 (digitalocean server 3164444): waiting\n"
        "[2025-01-01 03:00:02] web: web-1 (digitalocean server 3164444): creating\n"
    )


def test_a_terminal_gets_no_notes_and_lines_without_now_have_no_time():
    stream = io.StringIO()
    ApplyProgress(stream, force_terminal=True).note("Starting snapshot management script...")
    assert stream.getvalue() == ""
    plain = io.StringIO()
    progress = ApplyProgress(plain, force_terminal=False)
    progress(WEB, "creating")
    assert plain.getvalue() == "web: web-1 (digitalocean server 3164444): creating\n"


class GonePipe(io.StringIO):
    """A console whose reader has gone: every write fails as a pipe's does (EPIPE)."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        raise BrokenPipeError(32, "Broken pipe")


def test_progress_to_a_console_nobody_reads_stops_writing_and_does_not_fail():
    """The run goes on when cron's reader has gone (issue 21, review of item 4)."""
    stream = GonePipe()
    with ApplyProgress(stream) as progress:
        progress(WEB, "creating")
        progress(WEB, "done")
        progress.note("Lock acquired successfully (PID: 1)")
    assert stream.writes == 1  # tried once, then left alone


def test_progress_to_a_closed_console_does_not_fail():
    stream = io.StringIO()
    stream.close()
    with ApplyProgress(stream) as progress:
        progress(WEB, "creating")
        progress(WEB, "done")
