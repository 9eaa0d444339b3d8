"""Which snapshots count as ours (docs/promises.md §5): pure classification, no cloud."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

import pytest

from snapshot_policy.core.model import DIGITALOCEAN, CloudSnapshot, DrillMark
from snapshot_policy.core.ownership import (
    classify,
    drill_mark,
    drill_result_labels,
    drill_server_labels,
    drill_server_name,
    has_marker,
    is_drill_server,
    marker_labels,
    marks_another_owner,
    name_pattern_regex,
    snapshots_for,
)
from tests.factories import target, utc

HETZNER_TARGET = target(keep_last=3)  # server 1 named "web" on Hetzner
DO_TARGET = replace(HETZNER_TARGET, provider=DIGITALOCEAN)
OURS = {"managed-by": "snapshot-policy", "snapshot-policy/server-id": "1"}


def cloud(name="web-20261125030000", server_id="1", labels=None, **flags):
    return CloudSnapshot(
        "7", name, utc(2026, 11, 25, 3), server_id, labels if labels is not None else {}, **flags
    )


def test_hetzner_snapshot_with_our_labels_is_managed():
    snapshot = classify(HETZNER_TARGET, cloud(labels=OURS))
    assert snapshot.managed
    assert snapshot.ownership == "labels managed-by=snapshot-policy and snapshot-policy/server-id=1"


def test_hetzner_snapshot_without_the_managed_by_label_is_not():
    snapshot = classify(HETZNER_TARGET, cloud(labels={"snapshot-policy/server-id": "1"}))
    assert (snapshot.managed, snapshot.ownership) == (False, "no managed-by=snapshot-policy label")


def test_hetzner_snapshot_labelled_for_another_server_is_not_managed():
    snapshot = classify(HETZNER_TARGET, cloud(labels={**OURS, "snapshot-policy/server-id": "2"}))
    assert (snapshot.managed, snapshot.ownership) == (
        False,
        "label snapshot-policy/server-id is not 1",
    )


def test_digitalocean_snapshot_needs_the_tag_on_a_snapshot_of_the_droplet():
    tagged = classify(DO_TARGET, cloud(labels={"snapshot-policy": ""}))
    assert (tagged.managed, tagged.ownership) == (
        True,
        "tagged snapshot-policy, made from droplet 1",
    )
    untagged = classify(DO_TARGET, cloud())
    assert (untagged.managed, untagged.ownership) == (False, "not tagged snapshot-policy")
    elsewhere = classify(DO_TARGET, cloud(server_id="2", labels={"snapshot-policy": ""}))
    assert (elsewhere.managed, elsewhere.ownership) == (
        False,
        "tagged snapshot-policy, but made from droplet 2, not 1",
    )


def test_a_renamed_droplet_keeps_its_tagged_snapshots_whatever_their_names():
    renamed = replace(DO_TARGET, server_name="web-new")
    for name in ("web-20261125030000", "web-before-upgrade", "nightly"):
        snapshot = classify(renamed, cloud(name=name, labels={"snapshot-policy": ""}))
        assert snapshot.managed, name


def test_a_renamed_servers_old_legacy_names_prove_nothing():
    renamed = replace(DO_TARGET, server_name="web-new", adopt_legacy_names=True)
    assert not classify(renamed, cloud(name="web-20261125030000")).managed
    assert classify(renamed, cloud(name="web-new-20261125030000")).managed
    hetzner = replace(HETZNER_TARGET, server_name="web-new", adopt_legacy_names=True)
    assert not classify(hetzner, cloud(name="web-20261125030000")).managed


def test_snapshots_of_other_servers_never_count():
    listing = [
        cloud(labels=OURS),
        cloud(server_id="2", labels={**OURS, "snapshot-policy/server-id": "2"}),
        cloud(server_id=None),
    ]
    assert [s.server_id for s in snapshots_for(HETZNER_TARGET, listing)] == ["1"]


def test_legacy_names_are_adopted_only_in_legacy_mode_and_only_exactly():
    legacy = cloud(name="web-20261125030000")
    assert not classify(HETZNER_TARGET, legacy).managed
    adopting = replace(HETZNER_TARGET, adopt_legacy_names=True)
    adopted = classify(adopting, legacy)
    assert adopted.managed and adopted.ownership.startswith("adopted")
    for lookalike in (
        "web2-20261125030000",
        "prod-web-20261125030000",
        "web-2026112503000",
        "web-20261125030000-copy",
        "web-backup",
    ):
        assert not classify(adopting, cloud(name=lookalike)).managed, lookalike


def test_name_pattern_regex_escapes_the_server_name_and_matches_whole_names():
    odd = replace(
        DO_TARGET, server_name="db.main(1)", name_pattern="nightly/{server_name}/{timestamp}"
    )
    regex = name_pattern_regex(odd)
    assert regex.fullmatch("nightly/db.main(1)/20261125030000")
    assert not regex.fullmatch("nightly/dbXmain(1)/20261125030000")


def test_marker_labels_on_hetzner_are_valid_label_values():
    labels = marker_labels(replace(HETZNER_TARGET, name="  Fleet: web/é servers! "))
    assert labels["managed-by"] == "snapshot-policy"
    assert labels["snapshot-policy/server-id"] == "1"
    assert labels["snapshot-policy/target"] == "Fleet__web___servers"


def test_marker_labels_on_digitalocean_are_the_tag_alone():
    assert marker_labels(DO_TARGET) == {"snapshot-policy": ""}


def test_classify_keeps_protection_and_creation_state():
    snapshot = classify(HETZNER_TARGET, cloud(labels=OURS, protected=True, creating=True))
    assert (snapshot.protected, snapshot.creating) == (True, True)


# -- owners: which configuration made a snapshot (issue 19, item 3) -------------------------

A_HETZNER = replace(HETZNER_TARGET, owner="config-a")
A_DO = replace(DO_TARGET, owner="config-a")


def test_marker_labels_carry_the_owner_on_both_clouds():
    assert marker_labels(A_HETZNER)["snapshot-policy/owner"] == "config-a"
    # DigitalOcean tags have no value: the owner is part of the tag's name, tagged before the
    # marker.
    assert list(marker_labels(A_DO)) == ["snapshot-policy-owner-config-a", "snapshot-policy"]


def test_a_snapshot_marked_by_this_configuration_is_managed():
    ours = classify(A_HETZNER, cloud(labels=marker_labels(A_HETZNER)))
    assert ours.managed and ours.ownership.endswith("owner config-a")
    assert classify(A_DO, cloud(labels=marker_labels(A_DO))).managed


def test_another_configurations_snapshot_is_not_managed_and_says_whose():
    b_hetzner, b_do = replace(A_HETZNER, owner="config-b"), replace(A_DO, owner="config-b")
    for mine, theirs in ((b_hetzner, A_HETZNER), (b_do, A_DO)):
        snapshot = classify(mine, cloud(labels=marker_labels(theirs)))
        assert not snapshot.managed
        assert snapshot.ownership.startswith(
            "another configuration's (owner config-a; this one is config-b)"
        )
        assert 'set settings.owner: "config-a"' in snapshot.ownership


def test_digitalocean_owner_tags_compare_regardless_of_case():
    """DigitalOcean keeps a tag's first spelling: ours may come back as another's capitals."""
    shouted = {"snapshot-policy": "", "SNAPSHOT-POLICY-OWNER-Config-A": ""}
    assert classify(A_DO, cloud(labels=shouted)).managed
    assert not classify(replace(A_DO, owner="config-b"), cloud(labels=shouted)).managed


def test_another_configurations_snapshot_is_never_adopted_by_name_or_journal():
    adopting = replace(HETZNER_TARGET, owner="config-b", adopt_legacy_names=True)
    theirs = cloud(name="web-20261125030000", labels={"snapshot-policy/owner": "config-a"})
    pending = {"web-20261125030000": utc(2026, 11, 25, 3)}
    snapshot = classify(adopting, theirs, pending)
    assert (snapshot.managed, snapshot.unmarked) == (False, False)
    assert snapshot.ownership.startswith("another configuration's")


def test_a_snapshot_with_our_marker_and_two_owners_is_not_ours():
    both = {**marker_labels(A_DO), "snapshot-policy-owner-config-b": ""}
    assert not classify(A_DO, cloud(labels=both)).managed


def test_marked_snapshots_of_earlier_versions_are_adopted_as_before_and_say_so():
    for mine, old_marker in ((A_HETZNER, OURS), (A_DO, {"snapshot-policy": ""})):
        snapshot = classify(mine, cloud(labels=old_marker))
        assert snapshot.managed
        assert (
            "no owner mark (made by a version before owners were recorded): adopted as this "
            "configuration's"
        ) in snapshot.ownership


def test_has_marker_leaves_out_another_configurations_snapshots():
    theirs = cloud(server_id="9", labels=marker_labels(replace(A_HETZNER, owner="config-b")))
    assert not has_marker("hetzner", theirs, "config-a")
    assert has_marker("hetzner", theirs, "config-b")
    # an earlier version's
    assert has_marker("hetzner", cloud(server_id="9", labels=OURS), "config-a")
    assert not has_marker("hetzner", cloud(server_id="9"), "config-a")
    tagged_by_b = cloud(labels=marker_labels(replace(A_DO, owner="config-b")))
    assert not has_marker(DIGITALOCEAN, tagged_by_b, "config-a") and has_marker(
        DIGITALOCEAN, tagged_by_b, "Config-B"
    )
    # no owner given: whoever's
    assert has_marker("hetzner", theirs) and has_marker(DIGITALOCEAN, tagged_by_b)


# -- the journal adopts only what its start made (issue 19, item 2) -------------------------

STARTED = utc(2026, 11, 25, 3)
HOUR = timedelta(hours=1)


def journalled(created):
    return CloudSnapshot("7", "web-20261125030000", created, "1", {})


def test_a_journalled_name_adopts_a_snapshot_made_within_its_creation_window():
    for created in (
        STARTED,
        STARTED + timedelta(seconds=30),
        STARTED + HOUR,
        STARTED - timedelta(seconds=50),
    ):
        snapshot = classify(
            HETZNER_TARGET, journalled(created), {"web-20261125030000": STARTED}, HOUR
        )
        assert snapshot.managed and snapshot.unmarked, created


def test_a_journalled_name_never_adopts_a_snapshot_that_existed_before_the_entry():
    golden = classify(
        HETZNER_TARGET,
        journalled(STARTED - timedelta(days=40)),
        {"web-20261125030000": STARTED},
        HOUR,
    )
    assert (golden.managed, golden.unmarked) == (False, False)
    assert golden.ownership.endswith("but it existed before it: not adopted")
    just_before = classify(
        HETZNER_TARGET,
        journalled(STARTED - timedelta(minutes=2)),
        {"web-20261125030000": STARTED},
        HOUR,
    )
    assert not just_before.managed


def test_a_journalled_name_does_not_adopt_a_snapshot_made_after_the_creation_timeout():
    late = classify(
        HETZNER_TARGET,
        journalled(STARTED + HOUR + timedelta(minutes=2)),
        {"web-20261125030000": STARTED},
        HOUR,
    )
    assert (late.managed, late.unmarked) == (False, False)
    assert "after that start's creation timeout" in late.ownership


def test_snapshots_for_passes_the_journal_window_on():
    listing = [
        journalled(STARTED - timedelta(days=3)),
        replace(journalled(STARTED + timedelta(minutes=5)), id="8"),
    ]
    found = snapshots_for(HETZNER_TARGET, listing, {"web-20261125030000": STARTED}, HOUR)
    assert [(s.id, s.managed) for s in found] == [("7", False), ("8", True)]


# -- a hint for hand-marked snapshots (issue 19, item 19) -----------------------------------


def test_a_managed_snapshot_named_unlike_the_pattern_carries_a_note():
    marked_by_hand = classify(HETZNER_TARGET, cloud(name="golden-image", labels=OURS))
    assert marked_by_hand.managed
    assert marked_by_hand.note.startswith(
        "its name does not fit '{server_name}-{timestamp}' for this server: marked by hand"
    )
    assert classify(HETZNER_TARGET, cloud(labels=OURS)).note == ""
    # not managed: nothing to warn of
    assert classify(HETZNER_TARGET, cloud(name="golden-image")).note == ""


# -- restore drills (issue 22): the marks on drill servers and on drilled snapshots ----------


def test_drill_server_labels_carry_the_drill_mark_the_owner_target_and_snapshot():
    assert drill_server_labels("hetzner", "prod", "web servers", "42") == {
        "managed-by": "snapshot-policy",
        "snapshot-policy/drill": "true",
        "snapshot-policy/owner": "prod",
        "snapshot-policy/target": "web_servers",
        "snapshot-policy/snapshot": "42",
    }
    assert drill_server_labels(DIGITALOCEAN, "prod", "web", "42") == {
        "snapshot-policy-owner-prod": "",
        "snapshot-policy-drill": "",
    }


def test_no_drill_server_is_made_without_an_owner():
    with pytest.raises(ValueError, match="settings.owner"):
        drill_server_labels("hetzner", "", "web", "42")


@pytest.mark.parametrize("provider", ["hetzner", DIGITALOCEAN])
def test_a_drill_server_of_this_configuration_is_recognised(provider):
    labels = drill_server_labels(provider, "prod", "web", "42")
    assert is_drill_server(provider, labels, "prod")


@pytest.mark.parametrize("provider", ["hetzner", DIGITALOCEAN])
def test_another_owners_drill_server_is_not_ours(provider):
    labels = drill_server_labels(provider, "staging", "web", "42")
    assert not is_drill_server(provider, labels, "prod")


def test_a_droplet_with_our_owner_and_another_owners_mark_is_not_ours():
    labels = {"snapshot-policy-drill": "", "snapshot-policy-owner-prod": ""}
    assert not is_drill_server(DIGITALOCEAN, {**labels, "snapshot-policy-owner-x": ""}, "prod")


@pytest.mark.parametrize(
    "provider, labels",
    [
        ("hetzner", {"managed-by": "snapshot-policy", "snapshot-policy/drill": "true"}),
        (DIGITALOCEAN, {"snapshot-policy-drill": ""}),
    ],
)
def test_a_drill_server_without_an_owner_mark_is_not_ours(provider, labels):
    assert not is_drill_server(provider, labels, "prod")


@pytest.mark.parametrize(
    "provider, labels",
    [
        # lookalikes: a tag that starts like ours, a label with another value, no managed-by
        (DIGITALOCEAN, {"snapshot-policy-drill-x": "", "snapshot-policy-owner-prod": ""}),
        (DIGITALOCEAN, {"snapshot-policy-drilled": "", "snapshot-policy-owner-prod": ""}),
        (DIGITALOCEAN, {"snapshot-policy": "", "snapshot-policy-owner-prod": ""}),
        (DIGITALOCEAN, {"snapshot-policy-drill": "", "snapshot-policy-owner-prod-2": ""}),
        (
            "hetzner",
            {
                "managed-by": "snapshot-policy",
                "snapshot-policy/drill": "yes",
                "snapshot-policy/owner": "prod",
            },
        ),
        ("hetzner", {"snapshot-policy/drill": "true", "snapshot-policy/owner": "prod"}),
        (
            "hetzner",
            {
                "managed-by": "snapshot-policy",
                "snapshot-policy/server-id": "1",
                "snapshot-policy/owner": "prod",
            },
        ),
        ("hetzner", {}),
    ],
)
def test_lookalike_marks_are_not_a_drill_server(provider, labels):
    assert not is_drill_server(provider, labels, "prod")


def test_digitalocean_tags_are_compared_regardless_of_case():
    labels = {"Snapshot-Policy-Drill": "", "snapshot-policy-owner-PROD": ""}
    assert is_drill_server(DIGITALOCEAN, labels, "prod")
    assert not is_drill_server("hetzner", {k.lower(): v for k, v in labels.items()}, "prod")


def test_an_empty_owner_recognises_nothing():
    assert not is_drill_server(DIGITALOCEAN, {"snapshot-policy-drill": ""}, "")


def test_drill_results_are_marked_with_the_day():
    day = date(2026, 12, 7)
    assert drill_result_labels("hetzner", True, day) == {
        "snapshot-policy/drilled": "passed-2026-12-07"
    }
    assert drill_result_labels(DIGITALOCEAN, False, day) == {
        "snapshot-policy-drilled-failed-2026-12-07": ""
    }


@pytest.mark.parametrize("provider", ["hetzner", DIGITALOCEAN])
@pytest.mark.parametrize("passed", [True, False])
def test_a_drill_mark_reads_back_what_was_written(provider, passed):
    day = date(2026, 12, 7)
    assert drill_mark(provider, drill_result_labels(provider, passed, day)) == DrillMark(
        passed, day
    )


def test_the_newest_digitalocean_drill_tag_wins():
    tags = {
        "snapshot-policy-drilled-failed-2026-11-30": "",
        "snapshot-policy-drilled-passed-2026-12-07": "",
        "snapshot-policy-drilled-passed-2026-12-01": "",
    }
    assert drill_mark(DIGITALOCEAN, tags) == DrillMark(True, date(2026, 12, 7))


def test_a_day_that_passed_and_failed_counts_as_failed():
    tags = {
        "snapshot-policy-drilled-passed-2026-12-07": "",
        "snapshot-policy-drilled-failed-2026-12-07": "",
    }
    assert drill_mark(DIGITALOCEAN, tags) == DrillMark(False, date(2026, 12, 7))


def test_digitalocean_drill_tags_are_read_regardless_of_case():
    tags = {"Snapshot-Policy-Drilled-PASSED-2026-12-07": ""}
    assert drill_mark(DIGITALOCEAN, tags) == DrillMark(True, date(2026, 12, 7))


@pytest.mark.parametrize(
    "text",
    ["passed", "passed-2026-13-01", "ok-2026-12-07", "passed-2026-12-07x", "passed-20261207", ""],
)
def test_a_malformed_drill_mark_proves_nothing(text):
    assert drill_mark("hetzner", {"snapshot-policy/drilled": text}) is None
    assert drill_mark(DIGITALOCEAN, {"snapshot-policy-drilled-" + text: ""}) is None


def test_no_drill_mark_without_one():
    assert drill_mark("hetzner", OURS) is None
    assert drill_mark(DIGITALOCEAN, {"snapshot-policy": ""}) is None
    # a Hetzner snapshot's tag-shaped label is not a Hetzner mark
    assert drill_mark("hetzner", {"snapshot-policy-drilled-passed-2026-12-07": ""}) is None


def test_classify_reads_the_drill_mark_and_keeps_the_listing():
    listed = cloud(labels={**OURS, "snapshot-policy/drilled": "failed-2026-12-01"})
    snapshot = classify(HETZNER_TARGET, listed)
    assert snapshot.drilled == DrillMark(False, date(2026, 12, 1))
    assert snapshot.cloud is listed
    assert classify(HETZNER_TARGET, cloud(labels=OURS)).drilled is None
    tags = {"snapshot-policy": "", "snapshot-policy-drilled-passed-2026-12-02": ""}
    assert classify(DO_TARGET, cloud(labels=tags)).drilled == DrillMark(True, date(2026, 12, 2))


def test_a_drill_server_name_is_a_hostname_with_the_target_server_and_time():
    name = drill_server_name(replace(HETZNER_TARGET, name="Web Servers_EU"), utc(2026, 12, 7, 3))
    assert name == "drill-web-servers-eu-1-20261207030000"


def test_a_drill_server_name_cuts_the_target_never_the_server_or_the_time():
    long = replace(HETZNER_TARGET, name="x" * 80, server_id="123456789012")
    name = drill_server_name(long, utc(2026, 12, 7, 3, 4, 5))
    assert len(name) == 63
    assert name.endswith("-123456789012-20261207030405")
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name)


def test_a_drill_server_name_is_in_utc():
    from datetime import datetime, timezone

    plus_one = timezone(timedelta(hours=1))
    name = drill_server_name(HETZNER_TARGET, datetime(2026, 12, 7, 4, tzinfo=plus_one))
    assert name.endswith("-20261207030000")


@pytest.mark.parametrize("name", ["---", "日本", "a-" * 40])
def test_any_target_name_gives_a_hostname(name):
    made = drill_server_name(replace(HETZNER_TARGET, name=name), utc(2026, 12, 7))
    assert len(made) <= 63
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", made)


def test_another_owners_mark_on_a_server_is_told_apart_from_ours_and_from_none():
    assert marks_another_owner("hetzner", {"snapshot-policy/owner": "beta"}, "alpha")
    assert not marks_another_owner("hetzner", {"snapshot-policy/owner": "alpha"}, "alpha")
    assert not marks_another_owner("hetzner", {}, "alpha")
    assert marks_another_owner("digitalocean", {"snapshot-policy-owner-Beta": ""}, "alpha")
    assert not marks_another_owner("digitalocean", {"snapshot-policy-owner-ALPHA": ""}, "alpha")
    assert not marks_another_owner("digitalocean", {"snapshot-policy-drill": ""}, "alpha")
