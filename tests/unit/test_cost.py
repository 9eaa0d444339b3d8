"""The cost model: what a plan's snapshots store and cost, now and after apply."""

from __future__ import annotations

from dataclasses import replace

from snapshot_policy.core.cost import Storage, estimated_size, target_storage, total_storage
from snapshot_policy.core.model import Price
from snapshot_policy.core.reconcile import build_plan
from tests.factories import snap, target, utc

PRICES = {"digitalocean": Price(0.06, "USD"), "hetzner": Price(0.0143, "EUR")}


def test_storage_counts_unknown_sizes_apart_and_prices_only_known_ones():
    storage = Storage.of(
        [("hetzner", 10.0), ("hetzner", None), ("digitalocean", 5.0), ("aws", 1.0)], PRICES
    )
    assert (storage.snapshots, storage.known_gb, storage.unknown) == (4, 16.0, 1)
    assert storage.costs == {"EUR": 10.0 * 0.0143, "USD": 5.0 * 0.06}  # no price for aws: no cost
    assert not storage.estimated


def test_estimated_size_is_the_newest_known_size():
    newest_unknown = snap(utc(2026, 11, 26), id="3", creating=True)
    sized = [
        snap(utc(2026, 11, 24), id="1", size_gb=2.0),
        snap(utc(2026, 11, 25), id="2", size_gb=3.0),
    ]
    assert estimated_size([newest_unknown, *sized]) == 3.0
    assert estimated_size([newest_unknown]) is None


def test_target_storage_after_apply_drops_deletions_and_adds_the_estimated_new_snapshot():
    history = [
        snap(utc(2026, 11, 25, 3), id="11", size_gb=2.5),
        snap(utc(2026, 11, 24, 3), id="10", size_gb=2.0),
    ]
    [plan] = build_plan([(target(keep_last=1), history)], utc(2026, 11, 26, 3)).targets
    now, after, estimate = target_storage(plan, PRICES)
    assert (now.snapshots, now.known_gb, now.estimated) == (2, 4.5, False)
    assert (after.snapshots, after.known_gb, after.estimated, estimate) == (1, 2.5, True, 2.5)


def test_total_storage_counts_a_snapshot_once_when_two_targets_cover_its_server():
    history = [
        snap(utc(2026, 11, 25, 3), id="11", size_gb=2.0),
        snap(utc(2026, 11, 24, 3), id="10", size_gb=2.0),
    ]
    nightly = target(keep_last=5)
    weekly = replace(nightly, name="weekly")
    plan = build_plan([(nightly, history), (weekly, history)], utc(2026, 11, 26, 3))
    now, after = total_storage(plan, PRICES)
    assert (now.snapshots, now.known_gb) == (2, 4.0)
    assert (after.snapshots, after.known_gb) == (4, 8.0)  # each target makes its own new snapshot
