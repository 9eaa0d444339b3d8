"""A drill server's name is unique among the journal's open entries (engine/drill.py): the
journal and the search after a lost reply tell drill servers apart by name."""

from __future__ import annotations

from snapshot_policy.engine.drill import unique_name


def test_a_name_no_open_entry_has_is_kept():
    taken = {"drill-web-101-20261020090000"}
    assert unique_name("drill-db-201-20261020090000", taken) == "drill-db-201-20261020090000"
    assert "drill-db-201-20261020090000" in taken


def test_a_name_an_open_entry_has_gets_the_next_free_suffix():
    taken = {"drill-web-101-20261020090000", "drill-web-101-20261020090000-2"}
    assert unique_name("drill-web-101-20261020090000", taken) == "drill-web-101-20261020090000-3"


def test_a_suffixed_name_stays_a_hostname_of_63_characters_at_most():
    long = "drill-" + "a" * 40 + "-101-20261020090000"
    name = unique_name(long[:63], {long[:63]})
    assert len(name) <= 63 and name.endswith("-2") and "--" not in name
