"""The journal of snapshot starts not yet marked (journal.py), on its own and on disk.

Proves: a start is pending until marked, and in flight only while younger than the window;
entries expire after 31 days; the file outlives the Journal object; a damaged file or entry
costs only that entry, never an exception; writes replace the file whole, from any thread.
"""

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from snapshot_policy.state import statefiles
from snapshot_policy.state.journal import Journal
from tests.factories import utc

NOW = utc(2025, 3, 1, 12)
IN_FLIGHT = timedelta(hours=1)


def entry(name: str, started, account: str = "do", server_id: str = "1") -> dict:
    return {
        "account": account,
        "server_id": server_id,
        "name": name,
        "started": started.isoformat(),
    }


def test_journal_reports_a_start_as_pending_and_in_flight(tmp_path):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)
    journal.started("do", "1", "web-20250301120000", NOW)
    assert journal.pending("do", "1") == {"web-20250301120000": NOW}
    assert journal.in_flight("do", "1") == {"web-20250301120000": NOW}
    assert journal.pending("do", "2") == {} and journal.pending("hz", "1") == {}


def test_journal_marked_crosses_off_only_that_start(tmp_path):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)
    for account, server_id in (("do", "1"), ("do", "2"), ("hz", "1")):
        journal.started(account, server_id, "web-20250301120000", NOW)
    journal.started("do", "1", "web-20250301110000", NOW - timedelta(hours=1))
    journal.marked("do", "1", "web-20250301120000")
    assert journal.pending("do", "1") == {"web-20250301110000": NOW - timedelta(hours=1)}
    assert journal.pending("do", "2") == {"web-20250301120000": NOW}
    assert journal.pending("hz", "1") == {"web-20250301120000": NOW}


def test_journal_in_flight_leaves_out_starts_older_than_the_window(tmp_path):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)
    journal.started("do", "1", "recent", NOW - timedelta(minutes=59))
    journal.started("do", "1", "at-the-limit", NOW - IN_FLIGHT)
    journal.started("do", "1", "old", NOW - timedelta(hours=5))
    assert set(journal.pending("do", "1")) == {"recent", "at-the-limit", "old"}
    assert set(journal.in_flight("do", "1")) == {"recent"}


def test_journal_drops_entries_older_than_31_days_on_read(tmp_path):
    path = tmp_path / "journal.json"
    path.write_text(
        json.dumps(
            [
                entry("kept", NOW - timedelta(days=30)),
                entry("expired", NOW - timedelta(days=31, seconds=1)),
            ]
        )
    )
    journal = Journal(path, IN_FLIGHT, now=NOW)
    assert journal.pending("do", "1") == {"kept": NOW - timedelta(days=30)}
    journal.marked("do", "1", "unrelated")  # any write keeps only what was read
    assert [e["name"] for e in json.loads(path.read_text())] == ["kept"]


def test_journal_survives_in_its_file_for_the_next_run(tmp_path):
    path = tmp_path / "state" / "journal.json"
    first = Journal(path, IN_FLIGHT, now=NOW)
    first.started("do", "1", "a", NOW)
    first.started("do", "1", "b", NOW)
    first.marked("do", "1", "a")
    later = NOW + timedelta(hours=2)
    second = Journal(path, IN_FLIGHT, now=later)
    assert second.pending("do", "1") == {"b": NOW}
    assert second.in_flight("do", "1") == {}  # two hours on, the start can no longer be running


@pytest.mark.parametrize(
    "content",
    [b"", b'[{"account": "do",', b"\xff\xfe not utf-8", b'{"account": "do"}', b"null", b"42"],
    ids=["empty", "truncated", "not-utf8", "object", "null", "number"],
)
def test_journal_reads_a_garbled_file_as_empty(tmp_path, content):
    path = tmp_path / "journal.json"
    path.write_bytes(content)
    journal = Journal(path, IN_FLIGHT, now=NOW)
    assert journal.pending("do", "1") == {}
    journal.started("do", "1", "a", NOW)  # and it can be written over
    assert Journal(path, IN_FLIGHT, now=NOW).pending("do", "1") == {"a": NOW}


def test_journal_reads_an_unreadable_path_as_empty(tmp_path):
    path = tmp_path / "journal.json"
    path.mkdir()
    assert Journal(path, IN_FLIGHT, now=NOW).pending("do", "1") == {}


def test_journal_skips_malformed_entries_and_keeps_the_rest(tmp_path):
    path = tmp_path / "journal.json"
    good = entry("good", NOW)
    path.write_text(
        json.dumps(
            [
                "not an entry",
                7,
                {"account": "do", "server_id": "1", "started": NOW.isoformat()},  # no name
                entry("bad-date", NOW) | {"started": "yesterday"},
                entry("no-zone", NOW) | {"started": "2025-03-01T12:00:00"},
                entry("null-date", NOW) | {"started": None},
                good,
                {**entry("numeric-id", NOW), "server_id": 1},  # written by hand: still this server
            ]
        )
    )
    assert Journal(path, IN_FLIGHT, now=NOW).pending("do", "1") == {"good": NOW, "numeric-id": NOW}


def test_journal_writes_leave_no_temporary_file(tmp_path):
    path = tmp_path / "journal.json"
    journal = Journal(path, IN_FLIGHT, now=NOW)
    journal.started("do", "1", "a", NOW)
    journal.marked("do", "1", "a")
    assert [p.name for p in tmp_path.iterdir()] == ["journal.json"]
    assert json.loads(path.read_text()) == []


def test_journal_write_interrupted_before_the_rename_leaves_the_previous_file_whole(
    tmp_path, monkeypatch
):
    path = tmp_path / "journal.json"
    journal = Journal(path, IN_FLIGHT, now=NOW)
    journal.started("do", "1", "a", NOW)
    before = path.read_bytes()

    def killed(*args):
        raise KeyboardInterrupt("killed between writing and renaming")

    monkeypatch.setattr(statefiles.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        journal.started("do", "1", "b", NOW)
    assert path.read_bytes() == before


def test_journal_keeps_every_start_made_from_many_threads(tmp_path):
    path = tmp_path / "journal.json"
    journal = Journal(path, IN_FLIGHT, now=NOW)
    names = [f"web-{n}" for n in range(40)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        # re-raises a thread's error
        list(pool.map(lambda name: journal.started("do", "1", name, NOW), names))
    assert sorted(Journal(path, IN_FLIGHT, now=NOW).pending("do", "1")) == sorted(names)


# -- issue 19: a start dated in the future; an after hook owed -----------------------------


class Collected(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def warnings():
    """The journal's warnings (pytest's log capture is off in this project: see pyproject)."""
    handler = Collected()
    logger = logging.getLogger("snapshot_policy.state.journal")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def test_a_start_dated_in_the_future_is_pending_but_not_in_flight(tmp_path, warnings):
    """Written while the clock was 40 days ahead, its request lost: it must not block the
    server for 40 days. It stays pending (adopted if its snapshot appears) and is named once."""
    path = tmp_path / "journal.json"
    ahead = NOW + timedelta(days=40)
    path.write_text(
        json.dumps(
            [
                entry("web-20250410120000", ahead),
                entry("slightly-ahead", NOW + timedelta(minutes=4)),
            ]
        )
    )
    journal = Journal(path, IN_FLIGHT, now=NOW)
    assert journal.pending("do", "1") == {
        "web-20250410120000": ahead,
        "slightly-ahead": NOW + timedelta(minutes=4),
    }
    # within the tolerance
    assert journal.in_flight("do", "1") == {"slightly-ahead": NOW + timedelta(minutes=4)}
    assert journal.future_starts() == [("do", "1", "web-20250410120000", ahead)]
    assert (
        len(warnings) == 1
        and "1 snapshot start(s) dated after this run's clock" in warnings[0]
        and ahead.isoformat() in warnings[0]
    )


def test_a_start_written_now_is_no_future_start(tmp_path, warnings):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)
    journal.started("do", "1", "a", NOW)
    assert journal.future_starts() == [] and warnings == []


def test_an_after_hook_owed_survives_in_the_file_until_it_ran(tmp_path):
    path = tmp_path / "journal.json"
    first = Journal(path, IN_FLIGHT, now=NOW)
    first.before_ran("do", "1", "db", "db-20250301120000", NOW)
    first.started("do", "1", "db-20250301120000", NOW)
    # the snapshot is done; the after hook is still owed
    first.marked("do", "1", "db-20250301120000")
    # past the 31 days kept for starts: a thaw is owed forever
    much_later = NOW + timedelta(days=60)
    second = Journal(path, IN_FLIGHT, now=much_later)
    assert second.afters_pending("do", "1") == {"db": ("db-20250301120000", NOW)}
    assert second.pending("do", "1") == {} and second.deletions("do", "1") == {}
    assert second.afters_pending("do", "2") == {}
    second.after_ran("do", "1", "db")
    assert Journal(path, IN_FLIGHT, now=much_later).afters_pending("do", "1") == {}


# -- drill servers (issue 22) ---------------------------------------------------------------


def drill(journal, name="drill-web-1", when=NOW, account="do"):
    journal.drill_requested(account, "web", "1", name, "snap-9", when)


def test_a_drill_server_is_open_from_its_request_until_it_is_gone(tmp_path):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)
    drill(journal)
    (requested,) = journal.open_drills("do")
    assert (requested.target, requested.source_server_id, requested.name) == (
        "web",
        "1",
        "drill-web-1",
    )
    assert (requested.snapshot_id, requested.when, requested.server_id) == (
        "snap-9",
        NOW,
        None,
    )
    journal.drill_created("do", "drill-web-1", "777")
    assert [
        d.server_id for d in Journal(tmp_path / "journal.json", IN_FLIGHT, NOW).open_drills("do")
    ] == ["777"]
    assert journal.open_drills("hz") == [] and journal.drill_accounts() == ["do"]
    journal.drill_gone("do", "drill-web-1")
    assert journal.open_drills("do") == []
    assert Journal(tmp_path / "journal.json", IN_FLIGHT, NOW).open_drills("do") == []


def test_a_drill_server_whose_delete_is_being_sent_says_so_to_the_next_run(tmp_path):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)
    drill(journal)
    journal.drill_created("do", "drill-web-1", "777")
    assert [d.deleting for d in journal.open_drills("do")] == [False]
    journal.drill_deleting("do", "drill-web-1")
    (open_drill,) = Journal(tmp_path / "journal.json", IN_FLIGHT, NOW).open_drills("do")
    assert (open_drill.server_id, open_drill.deleting) == ("777", True)


def test_a_drill_request_is_on_disk_before_it_returns_even_inside_a_batch(tmp_path):
    path = tmp_path / "journal.json"
    journal = Journal(path, IN_FLIGHT, now=NOW)
    with journal.batch():
        drill(journal)
        assert [e["name"] for e in json.loads(path.read_text())] == ["drill-web-1"]


def test_a_drill_request_that_cannot_be_written_raises_and_is_not_kept(tmp_path, monkeypatch):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(statefiles.os, "replace", full)
    with pytest.raises(OSError, match="No space left"):
        drill(journal)
    assert journal.open_drills("do") == []
    monkeypatch.undo()
    journal.started("do", "1", "a", NOW)  # the next write does not bring it back
    assert Journal(tmp_path / "journal.json", IN_FLIGHT, NOW).open_drills("do") == []


def test_open_drill_servers_never_expire(tmp_path):
    path = tmp_path / "journal.json"
    journal = Journal(path, IN_FLIGHT, now=NOW - timedelta(days=400))
    drill(journal, when=NOW - timedelta(days=400))
    journal.started("do", "1", "web-old", NOW - timedelta(days=400))
    later = Journal(path, IN_FLIGHT, now=NOW)
    assert [d.name for d in later.open_drills("do")] == ["drill-web-1"]
    assert later.pending("do", "1") == {}


def test_drill_entries_are_neither_starts_nor_deletions_nor_afters(tmp_path):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)
    drill(journal)
    journal.drill_created("do", "drill-web-1", "777")
    assert journal.pending("do", "1") == {} and journal.in_flight("do", "1") == {}
    assert journal.deletions("do", "1") == {} and journal.afters_pending("do", "1") == {}
    assert journal.future_starts() == []
    journal.marked("do", "1", "drill-web-1")
    journal.deleted("do", "1", "777")
    journal.after_ran("do", "1", "web")
    assert [d.name for d in journal.open_drills("do")] == ["drill-web-1"]


def test_crossing_off_one_drill_server_keeps_the_others(tmp_path):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)
    drill(journal, "drill-a")
    drill(journal, "drill-b", NOW + timedelta(seconds=1))
    drill(journal, "drill-a", account="hz")
    journal.drill_gone("do", "drill-a")
    assert [d.name for d in journal.open_drills("do")] == ["drill-b"]
    assert [d.name for d in journal.open_drills("hz")] == ["drill-a"]
