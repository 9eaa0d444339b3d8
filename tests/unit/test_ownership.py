"""Which snapshots count as ours (SPEC §5): pure classification, no cloud."""

from __future__ import annotations

from dataclasses import replace

from snapshot_policy.model import DIGITALOCEAN, CloudSnapshot
from snapshot_policy.ownership import classify, marker_labels, name_pattern_regex, snapshots_for
from tests.factories import target, utc

HETZNER_TARGET = target(keep_last=3)  # server 1 named "web" on Hetzner
DO_TARGET = replace(HETZNER_TARGET, provider=DIGITALOCEAN)
OURS = {"managed-by": "snapshot-policy", "snapshot-policy/server-id": "1"}


def cloud(name="web-20261125030000", server_id="1", labels=None, **flags):
    return CloudSnapshot("7", name, utc(2026, 11, 25, 3), server_id, labels if labels is not None else {}, **flags)


def test_hetzner_snapshot_with_our_labels_is_managed():
    snapshot = classify(HETZNER_TARGET, cloud(labels=OURS))
    assert snapshot.managed
    assert snapshot.ownership == "labels managed-by=snapshot-policy and snapshot-policy/server-id=1"


def test_hetzner_snapshot_without_the_managed_by_label_is_not():
    snapshot = classify(HETZNER_TARGET, cloud(labels={"snapshot-policy/server-id": "1"}))
    assert (snapshot.managed, snapshot.ownership) == (False, "no managed-by=snapshot-policy label")


def test_hetzner_snapshot_labelled_for_another_server_is_not_managed():
    snapshot = classify(HETZNER_TARGET, cloud(labels={**OURS, "snapshot-policy/server-id": "2"}))
    assert (snapshot.managed, snapshot.ownership) == (False, "label snapshot-policy/server-id is not 1")


def test_digitalocean_snapshot_needs_the_tag_on_a_snapshot_of_the_droplet():
    tagged = classify(DO_TARGET, cloud(labels={"snapshot-policy": ""}))
    assert (tagged.managed, tagged.ownership) == (True, "tagged snapshot-policy, made from droplet 1")
    untagged = classify(DO_TARGET, cloud())
    assert (untagged.managed, untagged.ownership) == (False, "not tagged snapshot-policy")
    elsewhere = classify(DO_TARGET, cloud(server_id="2", labels={"snapshot-policy": ""}))
    assert (elsewhere.managed, elsewhere.ownership) == (False, "tagged snapshot-policy, but made from droplet 2, not 1")


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
    listing = [cloud(labels=OURS), cloud(server_id="2", labels={**OURS, "snapshot-policy/server-id": "2"}), cloud(server_id=None)]
    assert [s.server_id for s in snapshots_for(HETZNER_TARGET, listing)] == ["1"]


def test_legacy_names_are_adopted_only_in_legacy_mode_and_only_exactly():
    legacy = cloud(name="web-20261125030000")
    assert not classify(HETZNER_TARGET, legacy).managed
    adopting = replace(HETZNER_TARGET, adopt_legacy_names=True)
    adopted = classify(adopting, legacy)
    assert adopted.managed and adopted.ownership.startswith("adopted")
    for lookalike in ("web2-20261125030000", "prod-web-20261125030000", "web-2026112503000", "web-20261125030000-copy", "web-backup"):
        assert not classify(adopting, cloud(name=lookalike)).managed, lookalike


def test_name_pattern_regex_escapes_the_server_name_and_matches_whole_names():
    odd = replace(DO_TARGET, server_name="db.main(1)", name_pattern="nightly/{server_name}/{timestamp}")
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
