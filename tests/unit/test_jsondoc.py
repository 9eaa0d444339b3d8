"""The parts every JSON document shares: the timestamp form and the fast indenter."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from dateutil.tz import tzutc
from hypothesis import given, settings
from hypothesis import strategies as st

from snapshot_policy.output.jsondoc import indented_json, iso_utc

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES)
def test_indented_json_is_json_dumps_with_indent_2(value):
    assert indented_json(value) == json.dumps(value, indent=2)


@pytest.mark.parametrize(
    "value",
    [
        {1: "a"},
        {None: 1, True: 2, 2.5: 3},
        {(1, 2): "tuple key"},
        [object()],
        {"when": datetime(2026, 1, 1)},
        {"x": {1, 2}},
    ],
    ids=["int key", "other scalar keys", "tuple key", "object", "datetime", "set"],
)
def test_indented_json_answers_what_json_dumps_cannot_take_as_json_dumps_does(value):
    try:
        expected = json.dumps(value, indent=2)
    except TypeError as error:
        with pytest.raises(TypeError, match=re.escape(str(error))):
            indented_json(value)
    else:
        assert indented_json(value) == expected


def test_indented_json_reports_a_cycle_as_json_dumps_does():
    looped: list = []
    looped.append(looped)
    with pytest.raises(ValueError, match="Circular reference detected"):
        indented_json(looped)


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
    assert iso_utc(moment) == moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
