"""The plan's text and JSON forms."""

from __future__ import annotations

import itertools
import json
import random
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from dateutil.tz import tzutc
from hypothesis import given, settings
from hypothesis import strategies as st

from snapshot_policy import render
from snapshot_policy.model import TargetFailure
from snapshot_policy.reconcile import build_plan
from tests.factories import snap, target, utc

GOLDEN_TEXT = """\
db: db-1 (digitalocean server 2, account main)
  schedule every run: no managed snapshot exists yet
  retention keep_last 2 (timezone UTC)
  + create db-1-20261126030000 (will be kept by: last)

web: web (hetzner server 1, account main)
  schedule every run: a snapshot is made on every run
  retention keep_last 2 (timezone UTC)
  + create web-20261126030000 (will be kept by: last)
  = keep web-20261125030000 (id 11, 2026-11-25T03:00Z): kept by: last
  - delete web-20261124030000 (id 10, 2026-11-24T03:00Z)
      no retention rule keeps it
  ! skip web-20260201000000 (id 4, 2026-02-01T00:00Z)
      protected; no retention rule keeps it
  ! skip web-20260101000000 (id 3, 2026-01-01T00:00Z)
      unmanaged: no managed-by label

Plan: 2 to create, 1 to delete, 1 to keep, 2 skipped across 2 target(s).
"""


def sample_plan():
    history = [
        snap(utc(2026, 11, 25, 3), id="11"),
        snap(utc(2026, 11, 24, 3), id="10"),
        snap(utc(2026, 1, 1), id="3", managed=False),
        snap(utc(2026, 2, 1), id="4", protected=True),
    ]
    web = target(keep_last=2)
    db = replace(web, name="db", server_id="2", server_name="db-1", provider="digitalocean")
    return build_plan([(web, history), (db, [])], utc(2026, 11, 26, 3))


def test_plan_text_matches_the_documented_layout():
    assert render.plan_text(sample_plan()) == GOLDEN_TEXT


def test_plan_text_reports_a_refusal():
    history = [snap(utc(2026, 11, 23 + n)) for n in range(3)]
    plan = build_plan([(target(keep_last=1, max_deletions=1), history)], utc(2026, 11, 26))
    text = render.plan_text(plan)
    assert "  ! refused: 3 deletions exceed max_deletions 1" in text
    assert text.endswith("\n1 target(s) refused by safety limits.\n")  # a sentence that would pass 80 columns starts a line
    assert max(len(line) for line in text.splitlines()) <= 80


def test_plan_json_has_the_documented_keys():
    document = json.loads(render.plan_json(sample_plan()))
    assert document["format_version"] == 1
    assert document["made_at"] == "2026-11-26T03:00:00Z"
    assert document["fingerprint"].startswith("sha256:")
    web = document["targets"][1]
    assert set(web) >= {"target", "provider", "server_id", "create", "delete", "keep", "skip", "refused"}
    assert web["create"] == {"name": "web-20261126030000", "rules": ["last"]}
    assert web["delete"] == [
        {"id": "10", "name": "web-20261124030000", "created": "2026-11-24T03:00:00Z", "protected": False,
         "adopted": False, "ownership": "managed-by label", "reason": "no retention rule keeps it"}
    ]
    assert web["keep"][0]["rules"] == ["last"]
    assert [s["id"] for s in web["skip"]] == ["4", "3"]
    assert document["summary"] == {
        "targets": 2, "create": 2, "delete": 1, "keep": 1, "skip": 2, "refused_targets": 0, "failed_targets": 0,
        "has_changes": True,
    }


def test_plan_json_is_deterministic():
    """The JSON form is a stable document for scripts and reviews: the same cloud, listed in any
    order, gives the same bytes, with targets by name and snapshots newest first, ties by id."""
    history = [
        snap(utc(2026, 11, 25, 3), id="14"),
        snap(utc(2026, 11, 24, 3), id="13"),
        snap(utc(2026, 11, 23, 3), id="12"),
        snap(utc(2026, 11, 22, 3), id="11"),
        snap(utc(2026, 2, 1), id="5", protected=True),
        snap(utc(2026, 1, 1), id="4", managed=False),
        snap(utc(2026, 1, 1), id="3", managed=False),
    ]
    web = target(keep_last=3)
    db = replace(web, name="db", server_id="2", server_name="db-1", provider="digitalocean")
    cache = replace(web, name="cache", server_id="3", server_name="cache-1")
    listings = [history, history[::-1], random.Random(7).sample(history, len(history))]
    renders = {
        render.plan_json(build_plan([(t, listing if t is web else []) for t in targets], utc(2026, 11, 26, 3)))
        for targets in itertools.permutations([web, db, cache])
        for listing in listings
    }
    assert len(renders) == 1
    document = json.loads(renders.pop())
    assert [t["target"] for t in document["targets"]] == ["cache", "db", "web"]
    entry = document["targets"][2]
    assert [s["id"] for s in entry["keep"]] == ["14", "13"]
    assert [s["id"] for s in entry["delete"]] == ["12", "11"]
    assert [s["id"] for s in entry["skip"]] == ["5", "4", "3"]


def test_plan_text_escapes_control_characters_in_names_from_the_cloud():
    """A snapshot named with a line break must not print a line that looks like a decision."""
    forged = replace(snap(utc(2026, 11, 25, 3), id="7", managed=False), name="x\n  - delete web-20261125030000 (id 1)")
    text = render.plan_text(build_plan([(target(keep_last=3), [forged])], utc(2026, 11, 26, 3)))
    assert "\n  - delete" not in text and "x\\n  - delete web-20261125030000" in text


# -- the JSON text, written sooner (issue 13, item 5) ------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.lists(inner, max_size=3).map(tuple) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_indented_json_is_json_dumps_with_indent_2(value):
    assert render.indented_json(value) == json.dumps(value, indent=2)


@pytest.mark.parametrize(
    "value",
    [{1: "a"}, {None: 1, True: 2, 2.5: 3}, {(1, 2): "tuple key"}, [object()], {"when": datetime(2026, 1, 1)}, {"x": {1, 2}}],
    ids=["int key", "other scalar keys", "tuple key", "object", "datetime", "set"],
)
def test_indented_json_answers_what_json_dumps_cannot_take_as_json_dumps_does(value):
    try:
        expected = json.dumps(value, indent=2)
    except TypeError as error:
        with pytest.raises(TypeError, match=re.escape(str(error))):
            render.indented_json(value)
    else:
        assert render.indented_json(value) == expected


def test_indented_json_reports_a_cycle_as_json_dumps_does():
    looped: list = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular reference detected"):
        render.indented_json(looped)


def test_plan_json_is_the_plan_document_indented_by_two():
    plan = sample_plan()
    failures = [TargetFailure("gone", "no server with id 9", "main")]
    assert render.plan_json(plan, failures) == json.dumps(render.plan_document(plan, failures), indent=2) + "\n"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 26, 3, 4, 5, 999999, tzinfo=timezone.utc),
        datetime(2026, 11, 26, 3, 4, 5, tzinfo=tzutc()),  # what hcloud's parser gives
        datetime(2026, 11, 26, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
        datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2026, 7, 1, 12, tzinfo=ZoneInfo("UTC")),
        datetime(999, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
        datetime.min.replace(tzinfo=timezone.utc),
        datetime.max.replace(tzinfo=timezone.utc),
    ],
)
def test_iso_utc_is_the_documented_utc_form(moment):
    assert render.iso_utc(moment) == moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_plan_text_lines_fit_80_columns_and_say_adopted_and_protected():
    """Real names and ids: every line within 80 columns; a snapshot adopted from snapshots.py's
    naming says so; a protected snapshot that is not ours reads as protected."""
    legacy = replace(snap(utc(2026, 11, 25, 3), id="100000011", managed=True), name="web-server-1-20261125030000",
                     ownership="adopted: named exactly as '{server_name}-{timestamp}' names them (as snapshots.py did)")
    pinned = replace(snap(utc(2026, 1, 1), id="100000003", managed=False), name="before-the-big-upgrade", protected=True, ownership="no managed-by label")
    doomed = [replace(snap(utc(2026, 11, 20 - n, 3), id=f"10000002{n}"), name=f"web-server-1-202611{20 - n}030000") for n in range(3)]
    plan = build_plan([(target(keep_last=2), [legacy, pinned, *doomed])], utc(2026, 11, 26))
    text = render.plan_text(plan)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "= keep web-server-1-20261125030000 (id 100000011, 2026-11-25T03:00Z, adopted)" in text
    assert "! skip before-the-big-upgrade (id 100000003, 2026-01-01T00:00Z)\n      protected, and not this tool's" in text
    document = json.loads(render.plan_json(plan))["targets"][0]
    assert document["keep"][0]["adopted"] is True and document["skip"][0]["protected"] is True


def test_styled_plan_colours_each_kind_of_line():
    text = render.plan_text(sample_plan())
    styled = render.styled(text)
    assert styled.plain == text
    styles = {str(span.style) for span in styled.spans}
    assert {"green", "red", "yellow", "dim"} <= styles
