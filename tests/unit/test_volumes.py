"""volumes: a droplet's attached volumes as targets of their own (docs/promises.md §5.18)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    Account,
    ActionKind,
    CloudSnapshot,
    Consistency,
    Drill,
    Hooks,
    RetentionPolicy,
    Safety,
    Selector,
    Server,
    Target,
    TargetSpec,
    Volume,
)
from snapshot_policy.core.orphans import find_orphans
from snapshot_policy.core.ownership import marker_labels, snapshots_for
from snapshot_policy.core.reconcile import build_plan, snapshot_name
from snapshot_policy.core.volumes import as_servers, attached, volume_targets

DO = Account("do", "digitalocean", "t0ken-do")
KEEP = RetentionPolicy(keep_last=2)
NOW = datetime(2026, 12, 7, 3, 0, tzinfo=timezone.utc)


def spec(name="web", volumes=True):
    return TargetSpec(name, DO, Selector(ids=("1",)), KEEP, volumes=volumes, owner="ops")


def droplet_target(name="web", server_id="1", server_name="web-1") -> Target:
    return Target(
        name,
        "digitalocean",
        "do",
        server_id,
        server_name,
        KEEP,
        safety=Safety(max_deletions=3),
        owner="ops",
        hooks=Hooks(before=("true",)),
        drill=Drill(every=Duration.parse("7d")),
        copies=("ams3",),
        consistency=Consistency(),
    )


PG = Volume("vol-pg", "pgdata", "nyc3", ("1",), 100)
LOGS = Volume("vol-logs", "logs", "nyc3", (), 10)


def test_each_attached_volume_follows_its_droplet_with_the_droplets_rules_only():
    server = Server("1", "web-1", volume_ids=("vol-pg", "vol-logs"))
    targets, failures = volume_targets([spec()], [droplet_target()], [server], [PG, LOGS])
    assert failures == []
    assert [(t.server_id, t.server_name, t.volume_of) for t in targets] == [
        ("1", "web-1", None),
        ("vol-pg", "web-1-pgdata", "1"),
        ("vol-logs", "web-1-logs", "1"),
    ]
    volume = targets[1]
    assert (volume.retention, volume.safety, volume.owner, volume.name) == (
        KEEP,
        Safety(max_deletions=3),
        "ops",
        "web",
    )
    # hooks and consistency run around the droplet only; no drill, no copies of a volume
    assert (volume.hooks, volume.consistency, volume.drill, volume.copies) == (None, None, None, ())
    assert snapshot_name(volume, NOW) == "web-1-pgdata-20261207030000"
    assert marker_labels(volume) == marker_labels(targets[0])


def test_no_volume_targets_without_volumes_true_nor_for_orphans():
    server = Server("1", "web-1", volume_ids=("vol-pg",))
    orphan = Target("(orphans)", "digitalocean", "do", "9", "old", KEEP, orphan=True)
    targets, failures = volume_targets(
        [spec(volumes=False)], [droplet_target(), orphan], [server], [PG]
    )
    assert [t.server_id for t in targets] == ["1", "9"] and failures == []


def test_a_volume_the_listing_lacks_fails_the_target_and_the_others_still_go():
    server = Server("1", "web-1", volume_ids=("vol-gone", "vol-pg"))
    targets, failures = volume_targets([spec()], [droplet_target()], [server], [PG])
    assert [t.server_id for t in targets] == ["1", "vol-pg"]
    (failure,) = failures
    assert failure.target == "web" and "vol-gone" in failure.reason
    assert "volume listing lacks" in failure.reason


def test_attached_takes_the_droplets_list_then_volumes_naming_it_each_once():
    server = Server("1", "web-1", volume_ids=("vol-pg", "vol-pg"))
    other = Volume("vol-x", "x", "nyc3", ("1",))
    found, missing = attached(server, {"vol-pg": PG, "vol-x": other, "vol-logs": LOGS})
    assert [v.id for v in found] == ["vol-pg", "vol-x"] and missing == []


def cloud(
    volume_id: str, name: str, days: int, tags=("snapshot-policy-owner-ops", "snapshot-policy")
):
    return CloudSnapshot(
        f"{volume_id}-{days}",
        name,
        NOW - timedelta(days=days),
        volume_id,
        {t: "" for t in tags},
    )


def test_volume_snapshots_are_ours_only_with_our_tags_on_that_volume():
    targets, _ = volume_targets(
        [spec()], [droplet_target()], [Server("1", "web-1", volume_ids=("vol-pg",))], [PG]
    )
    volume = targets[1]
    listing = [
        cloud("vol-pg", "web-1-pgdata-20261206030000", 1),
        cloud("vol-pg", "manual", 2, tags=()),
        cloud("vol-pg", "theirs", 3, tags=("snapshot-policy-owner-else", "snapshot-policy")),
        cloud("vol-logs", "web-1-logs-20261204030000", 4),
    ]
    seen = {s.name: s.managed for s in snapshots_for(volume, listing)}
    assert seen == {"web-1-pgdata-20261206030000": True, "manual": False, "theirs": False}
    (ours,) = [s for s in snapshots_for(volume, listing) if s.managed]
    assert ours.ownership.startswith("tagged snapshot-policy, made from volume vol-pg")


def test_max_deletions_counts_a_targets_droplets_and_volumes_together():
    server = Server("1", "web-1", volume_ids=("vol-pg",))
    targets, _ = volume_targets([spec()], [droplet_target()], [server], [PG])
    droplet, volume = targets
    keep_one = RetentionPolicy(keep_last=1)
    observed = [
        (
            replace(t, retention=keep_one),
            snapshots_for(
                t,
                [
                    cloud(t.server_id, f"{t.server_name}-2026120{d}030000", 7 - d)
                    for d in range(1, 4)
                ],
            ),
        )
        for t in (droplet, volume)
    ]
    plan = build_plan(observed, NOW)
    # 3 + 3 deletions (the new snapshot counted) across its droplet and volume exceed 3
    assert all("6 deletions across the target's 2 servers" in p.refusal for p in plan.targets)
    assert plan.count(ActionKind.DELETE) == 0
    assert [p.target.server_id for p in plan.targets] == ["1", "vol-pg"]  # volume after droplet


def test_a_deleted_volumes_snapshots_are_orphans_only_if_it_is_missing_from_the_listing():
    listing = [cloud("vol-pg", "web-1-pgdata-20261206030000", 1)]
    servers = [Server("1", "web-1")]
    orphans, _ = find_orphans(DO, "ops", servers + as_servers([PG]), listing, True, {}, NOW, 1)
    assert orphans == []
    orphans, absent = find_orphans(DO, "ops", servers, listing, False, {}, NOW, 1)
    (orphan,) = orphans
    assert orphan.server_id == "vol-pg" and orphan.retention == RetentionPolicy()  # keeps all
    assert orphan.server_name == "web-1-pgdata" and absent is None


def test_a_volume_two_droplets_claim_is_no_target_of_either():
    """A volume moved between the droplet listing and the volume listing (or a garbled
    reply) names one droplet while another still names it: two targets over one volume's
    snapshots, with two sets of rules, would delete what the other keeps and snapshot it
    twice. As two targets claiming one server (resolve), both fail; nothing is decided."""
    a = Server("1", "web-1", volume_ids=("vol-pg",))
    b = Server("2", "db-1")
    moved = replace(PG, droplet_ids=("2",))
    db_spec = TargetSpec("db", DO, Selector(ids=("2",)), RetentionPolicy(keep_last=1), volumes=True)
    db = replace(droplet_target("db", "2", "db-1"), retention=RetentionPolicy(keep_last=1))
    targets, failures = volume_targets([spec(), db_spec], [droplet_target(), db], [a, b], [moved])
    assert [t.server_id for t in targets] == ["1", "2"]
    assert sorted(f.target for f in failures) == ["db", "web"]
    assert all("vol-pg" in f.reason and "two droplets" in f.reason for f in failures)
