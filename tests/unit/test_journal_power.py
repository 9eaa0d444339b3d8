"""The journal's `powered_off` entries (journal.py; docs/promises.md §5.17): written to disk
before a shutdown is sent, crossed off once the server runs again, never expiring, and
invisible to the other kinds of entry."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from snapshot_policy.state.journal import Journal
from tests.factories import utc

NOW = utc(2025, 3, 1, 12)
IN_FLIGHT = timedelta(hours=1)


def test_a_powered_off_entry_is_on_disk_at_once_even_inside_a_batch(tmp_path):
    path = tmp_path / "journal.json"
    journal = Journal(path, IN_FLIGHT, now=NOW)
    with journal.batch():
        journal.powering_off("hz", "4711", "db", NOW)
        (entry,) = json.loads(path.read_text())  # before the batch ends: the shutdown follows
    assert entry == {
        "account": "hz",
        "server_id": "4711",
        "name": "db",
        "started": NOW.isoformat(),
        "powered_off": "db",
    }
    assert journal.powered_off("hz", "4711") == ("db", NOW)
    assert journal.powered_off("hz", "1") is None and journal.powered_off("do", "4711") is None


def test_it_is_not_a_start_a_deletion_or_an_owed_after(tmp_path):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)
    journal.powering_off("hz", "4711", "db", NOW)
    assert journal.pending("hz", "4711") == {}
    assert journal.deletions("hz", "4711") == {}
    assert journal.afters_pending("hz", "4711") == {}
    assert journal.future_starts() == []


def test_powered_on_crosses_off_only_that_server(tmp_path):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)
    journal.powering_off("hz", "4711", "db", NOW)
    journal.powering_off("hz", "4712", "db", NOW)
    journal.started("hz", "4711", "db-1-20250301120000", NOW)
    journal.powered_on("hz", "4711")
    assert journal.powered_off("hz", "4711") is None
    assert journal.powered_off("hz", "4712") == ("db", NOW)
    assert journal.pending("hz", "4711") == {"db-1-20250301120000": NOW}


def test_a_second_shutdown_of_a_server_keeps_one_entry(tmp_path):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)
    journal.powering_off("hz", "4711", "db", NOW)
    journal.powering_off("hz", "4711", "db", NOW + timedelta(minutes=5))
    assert journal.powered_off("hz", "4711") == ("db", NOW + timedelta(minutes=5))
    assert len(json.loads((tmp_path / "journal.json").read_text())) == 1


def test_it_never_expires_and_outlives_the_journal_object(tmp_path):
    path = tmp_path / "journal.json"
    Journal(path, IN_FLIGHT, now=NOW).powering_off("hz", "4711", "db", NOW)
    later = Journal(path, IN_FLIGHT, now=NOW + timedelta(days=400))
    assert later.powered_off("hz", "4711") == ("db", NOW)


def test_if_it_cannot_be_written_it_raises_and_is_not_kept(tmp_path):
    path = tmp_path / "journal.json"
    journal = Journal(path, IN_FLIGHT, now=NOW)
    path.mkdir()  # the file cannot be replaced: a directory stands there
    with pytest.raises(OSError):
        journal.powering_off("hz", "4711", "db", NOW)
    assert journal.powered_off("hz", "4711") is None


def test_left_off_lists_every_entry(tmp_path):
    journal = Journal(tmp_path / "journal.json", IN_FLIGHT, now=NOW)
    journal.powering_off("hz", "4711", "db", NOW)
    journal.powering_off("do", "3164444", "web", NOW)
    journal.started("hz", "4711", "db-1-20250301120000", NOW)
    assert sorted(journal.left_off()) == [
        ("do", "3164444", "web", NOW),
        ("hz", "4711", "db", NOW),
    ]
