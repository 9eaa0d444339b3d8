"""The host's zone as an IANA name, from TZ or /etc/localtime, as the C library finds it and
snapshots.py's `datetime.now()` used it (issue 21, item 5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapshot_policy.config.hostzone import host_zone


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """A folder standing in for /etc, and a zoneinfo tree beside it with Europe/Berlin."""
    tree = tmp_path / "usr" / "share" / "zoneinfo"
    (tree / "Europe").mkdir(parents=True)
    (tree / "posix" / "Asia").mkdir(parents=True)
    (tree / "Europe" / "Berlin").write_bytes(b"TZif-berlin")
    (tree / "Europe" / "Paris").write_bytes(b"TZif-paris")
    (tree / "posix" / "Asia" / "Tokyo").write_bytes(b"TZif-tokyo")
    (tmp_path / "etc").mkdir()
    return tmp_path


def zone(etc: Path, env: dict[str, str] | None = None) -> tuple[str, bool]:
    found = host_zone(
        env or {},
        etc / "etc" / "localtime",
        etc / "etc" / "timezone",
        [str(etc / "usr" / "share" / "zoneinfo")],
    )
    return found.name, found.warning is not None


@pytest.mark.parametrize(
    ("tz", "expected"),
    [
        ("Europe/Berlin", "Europe/Berlin"),
        (":America/New_York", "America/New_York"),
        (" Asia/Tokyo ", "Asia/Tokyo"),
        ("", "UTC"),
        ("UTC", "UTC"),
        ("EST5", "Etc/GMT+5"),  # POSIX: west of Greenwich is positive, as in Etc/GMT+5
        ("<+03>-3", "Etc/GMT-3"),
        ("UTC0", "Etc/GMT"),
    ],
)
def test_tz_names_the_zone(etc, tz, expected):
    (etc / "etc" / "localtime").symlink_to(etc / "usr" / "share" / "zoneinfo" / "Europe" / "Paris")
    assert zone(etc, {"TZ": tz}) == (expected, False)


def test_a_tz_path_into_a_zoneinfo_folder_names_the_zone(etc):
    path = etc / "usr" / "share" / "zoneinfo" / "Europe" / "Berlin"
    assert zone(etc, {"TZ": str(path)}) == ("Europe/Berlin", False)
    assert zone(etc, {"TZ": ":" + str(etc / "usr/share/zoneinfo/posix/Asia/Tokyo")}) == (
        "Asia/Tokyo",
        False,
    )


def test_a_posix_rule_with_daylight_saving_falls_back_to_utc_and_says_how_to_name_it(etc):
    found = host_zone({"TZ": "CET-1CEST,M3.5.0,M10.5.0/3"}, etc / "nothing", etc / "nothing")
    assert found.name == "UTC"
    assert found.source == "TZ"  # the warning reads `TZ: 'CET-1CEST…' is not …`
    assert found.warning.startswith("'CET-1CEST,M3.5.0,M10.5.0/3' is not an IANA time zone name")
    assert "TZ=Europe/Berlin" in found.warning


@pytest.mark.parametrize("tz", ["localtime", "posixrules", "right/UTC", "posix/Europe/Berlin"])
def test_a_zone_file_no_other_host_knows_by_that_name_is_not_taken_as_the_zone(etc, tz):
    """zoneinfo opens these, but migrate would write a name that means nothing elsewhere."""
    assert zone(etc, {"TZ": tz}) == ("UTC", True)


def test_a_long_tz_is_shown_cut_short():
    found = host_zone({"TZ": "X" * 5000}, Path("/nonexistent"), Path("/nonexistent"))
    assert found.name == "UTC" and len(found.warning) < 250 and "X…'" in found.warning


def test_without_tz_the_localtime_link_names_the_zone(etc):
    (etc / "etc" / "localtime").symlink_to(etc / "usr" / "share" / "zoneinfo" / "Europe" / "Berlin")
    (etc / "etc" / "timezone").write_text("Europe/Paris\n")  # the link wins, as for the C library
    assert zone(etc) == ("Europe/Berlin", False)


def test_without_tz_or_link_etc_timezone_names_the_zone(etc):
    (etc / "etc" / "localtime").write_bytes(b"TZif-unknown")
    (etc / "etc" / "timezone").write_text("Europe/Paris\n")
    assert zone(etc) == ("Europe/Paris", False)


def test_a_copied_localtime_is_matched_against_the_zoneinfo_files(etc):
    (etc / "etc" / "localtime").write_bytes(b"TZif-berlin")
    assert zone(etc) == ("Europe/Berlin", False)


def test_an_unknown_localtime_falls_back_to_utc_with_a_warning(etc):
    (etc / "etc" / "localtime").write_bytes(b"TZif-unknown")
    assert zone(etc) == ("UTC", True)


def test_no_localtime_at_all_is_utc_as_for_the_c_library(etc):
    assert zone(etc) == ("UTC", False)
