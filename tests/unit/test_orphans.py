"""orphans: our snapshots of servers that are gone, pruned only once their absence is certain
(docs/promises.md §5)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from snapshot_policy.core.model import Account, CloudSnapshot, RetentionPolicy, Server, Target
from snapshot_policy.core.orphans import (
    ORPHAN_GRACE,
    absence_certain,
    find_orphans,
    listed_completely,
)
from snapshot_policy.core.ownership import (
    DIGITALOCEAN_TAG,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    OWNER_LABEL,
    SERVER_ID_LABEL,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
HZ = Account("hz", "hetzner", "t0ken-hz")
DO = Account("do", "digitalocean", "t0ken-do")
WEB = Server("1", "web")


def ours(snapshot_id, name, server_id, days_ago, owner=None):
    labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, SERVER_ID_LABEL: server_id}
    if owner:
        labels[OWNER_LABEL] = owner
    return CloudSnapshot(snapshot_id, name, NOW - timedelta(days=days_ago), server_id, labels)


GONE = [ours("10", "db-20261101000000", "77", 25), ours("11", "db-20261120000000", "77", 6)]


def orphans_of(listing, certain=True, since=None, keep_last=2, servers=(WEB,), owner=""):
    return find_orphans(HZ, owner, list(servers), listing, certain, since, NOW, keep_last)


def test_our_snapshots_of_a_missing_server_make_one_orphan_target_named_after_the_newest():
    kept = CloudSnapshot("12", "manual", NOW, "77")  # not ours: no orphan for it alone
    targets, absent = orphans_of([*GONE, kept, ours("13", "web-20261125000000", "1", 1)])
    assert targets == [
        Target("(orphans)", "hetzner", "hz", "77", "db", RetentionPolicy(), orphan=True)
    ]
    assert absent == {"77"}


def test_another_configurations_snapshots_of_a_missing_server_are_no_orphans_of_ours():
    targets, absent = orphans_of(
        [ours("10", "db-20261101000000", "77", 25, owner="other")], owner="me"
    )
    assert targets == [] and absent == set()


def test_an_orphan_is_pruned_only_once_missing_for_the_grace_period():
    just_short = {("hz", "77"): NOW - ORPHAN_GRACE + timedelta(seconds=1)}
    assert not orphans_of(GONE, since=just_short)[0][0].retention.has_rules
    assert not orphans_of(GONE, since={("other", "77"): NOW - timedelta(days=9)})[0][
        0
    ].retention.has_rules
    assert not orphans_of(GONE, since=None)[0][0].retention.has_rules
    targets, _ = orphans_of(GONE, since={("hz", "77"): NOW - ORPHAN_GRACE})
    assert targets[0].retention == RetentionPolicy(keep_last=2)


def test_an_uncertain_absence_prunes_nothing_and_is_not_recorded():
    targets, absent = orphans_of(GONE, certain=False, since={("hz", "77"): NOW - timedelta(days=9)})
    assert [(t.server_id, t.retention.has_rules) for t in targets] == [("77", False)]
    assert absent is None


def test_without_keep_last_a_certain_orphan_is_pruned_to_nothing_kept_by_count():
    targets, _ = orphans_of(GONE, keep_last=None, since={("hz", "77"): NOW - timedelta(days=2)})
    assert targets[0].retention == RetentionPolicy(keep_last=0)


@pytest.mark.parametrize(
    "unresolved, unsettled, incomplete, certain",
    [
        (False, False, False, True),
        (True, False, False, False),  # a server a target names was not found
        (False, True, False, False),  # the listing kept changing while read
        (False, False, True, False),  # a server names snapshots the listing lacks
    ],
)
def test_an_absence_is_certain_only_when_every_view_was_whole(
    unresolved, unsettled, incomplete, certain
):
    assert absence_certain(unresolved, unsettled, incomplete) is certain


def test_a_droplet_naming_snapshots_the_listing_lacks_fails_its_target():
    listed = CloudSnapshot("501", "web-20261120000000", NOW, "1", {DIGITALOCEAN_TAG: ""})
    servers = [
        Server("1", "web", snapshot_ids=("501", "502")),
        Server("2", "app", snapshot_ids=()),
        Server("3", "db"),
    ]
    targets = [
        Target(s.name, "digitalocean", "do", s.id, s.name, RetentionPolicy(keep_last=1))
        for s in servers
    ]
    complete, failures = listed_completely(targets, servers, [listed])
    assert [t.name for t in complete] == ["app", "db"]
    reason = (
        "server web (1) names snapshot(s) 502 that the account's snapshot listing lacks: "
        "the listing is incomplete, so nothing is created or deleted for it this run"
    )
    assert [(f.target, f.account, f.server_name, f.provider, f.reason) for f in failures] == [
        ("web", "do", "web", "digitalocean", reason),
    ]


def test_an_incomplete_listing_names_the_first_five_snapshots_it_lacks():
    server = Server("1", "web", snapshot_ids=tuple(str(n) for n in range(100, 108)))
    target = Target("web", "digitalocean", "do", "1", "web", RetentionPolicy(keep_last=1))
    _, failures = listed_completely([target], [server], [])
    assert "names snapshot(s) 100, 101, 102, 103, 104 and 3 more that" in failures[0].reason
