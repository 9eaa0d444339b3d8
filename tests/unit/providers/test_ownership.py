"""Which snapshots count as ours (SPEC §5): pure classification, no cloud."""

from __future__ import annotations

from dataclasses import replace

from snapshot_policy.model import DIGITALOCEAN
from snapshot_policy.providers.ownership import CloudSnapshot, classify, hetzner_labels, name_pattern_regex, snapshots_for
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


def test_digitalocean_snapshot_needs_the_tag_and_the_name_pattern():
    assert classify(DO_TARGET, cloud(labels={"snapshot-policy": ""})).managed
    untagged = classify(DO_TARGET, cloud())
    assert (untagged.managed, untagged.ownership) == (False, "not tagged snapshot-policy")
    misnamed = classify(DO_TARGET, cloud(name="web-before-upgrade", labels={"snapshot-policy": ""}))
    assert not misnamed.managed and "does not fit" in misnamed.ownership


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


def test_hetzner_labels_are_valid_label_values():
    labels = hetzner_labels(replace(HETZNER_TARGET, name="  Fleet: web/é servers! "))
    assert labels["managed-by"] == "snapshot-policy"
    assert labels["snapshot-policy/server-id"] == "1"
    assert labels["snapshot-policy/target"] == "Fleet__web___servers"


def test_classify_keeps_protection_and_creation_state():
    snapshot = classify(HETZNER_TARGET, cloud(labels=OURS, protected=True, creating=True))
    assert (snapshot.protected, snapshot.creating) == (True, True)
