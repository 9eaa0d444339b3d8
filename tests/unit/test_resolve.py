"""resolve: which servers a target spec names, from listings passed in (docs/promises.md §5)."""

from __future__ import annotations

from dataclasses import replace

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    Account,
    Drill,
    RetentionPolicy,
    Selector,
    Server,
    TargetSpec,
)
from snapshot_policy.core.resolve import failure, label_selectors, resolve

HZ = Account("hz", "hetzner", "t0ken-hz")
KEEP = RetentionPolicy(keep_last=1)


def spec(name, **selector):
    return TargetSpec(name, HZ, Selector(**selector), KEEP)


def test_label_selectors_are_listed_once_each_in_the_order_first_named():
    specs = [
        spec("a", label_selector="b"),
        spec("x", ids=("1",)),
        spec("c", label_selector="a"),
        spec("d", label_selector="b"),
    ]
    assert label_selectors(specs) == ["b", "a"]
    assert label_selectors([spec("x", names=("web",))]) == []


def test_ids_and_names_resolve_and_what_is_missing_fails_its_target_only_for_the_rest():
    servers = [Server("1", "twin"), Server("2", "solo"), Server("3", "twin")]
    targets, failures = resolve(
        [spec("twins", names=("twin", "nobody")), spec("ids", ids=("7", "2"))], servers, {}
    )
    assert [(t.name, t.server_id, t.server_name) for t in targets] == [
        ("twins", "1", "twin"),
        ("twins", "3", "twin"),
        ("ids", "2", "solo"),
    ]
    assert [(f.target, f.reason) for f in failures] == [
        ("twins", "no server named 'nobody'"),
        ("ids", "no server with id 7"),
    ]


def test_an_unknown_name_gets_a_did_you_mean_from_the_servers_listed():
    _, failures = resolve(
        [spec("db", names=("db1x",))], [Server("1", "db-1"), Server("2", "web-1")], {}
    )
    assert [f.reason for f in failures] == ["no server named 'db1x'; did you mean 'db-1'?"]


def test_a_label_selector_takes_the_servers_its_listing_matched_and_fails_when_none():
    servers = [Server("1", "web"), Server("2", "db")]
    targets, failures = resolve(
        [spec("db", label_selector="role=db"), spec("none", label_selector="role=x")],
        servers,
        {"role=db": [servers[1]], "role=x": []},
    )
    assert [(t.name, t.server_id) for t in targets] == [("db", "2")]
    assert [(f.target, f.reason) for f in failures] == [
        ("none", "no server matches label selector 'role=x'")
    ]


def test_a_server_two_targets_name_fails_both_and_their_other_servers_stay_targets():
    servers = [Server("1", "web"), Server("2", "db"), Server("3", "app")]
    specs = [
        spec("by-name", names=("web", "db")),
        spec("by-id", ids=("1", "3")),
        spec("by-label", label_selector="all"),
    ]
    targets, failures = resolve(specs, servers, {"all": [servers[2]]})
    assert [(t.name, t.server_id) for t in targets] == [("by-name", "2")]
    one_only = "a server may belong to one target only"
    web, app = "server web (1) is selected by targets", "server app (3) is selected by targets"
    assert [(f.target, f.reason) for f in failures] == [
        ("by-name", f"{web} by-id and by-name; {one_only}"),
        ("by-id", f"{web} by-id and by-name; {one_only}"),
        ("by-id", f"{app} by-id and by-label; {one_only}"),
        ("by-label", f"{app} by-id and by-label; {one_only}"),
    ]


def test_a_configured_server_name_stands_in_targets_and_failures():
    named = TargetSpec(
        "legacy",
        HZ,
        Selector(ids=("1", "9")),
        KEEP,
        server_name="old-name",
        adopt_legacy_names=True,
    )
    targets, failures = resolve([named], [Server("1", "web")], {})
    assert [(t.server_name, t.adopt_legacy_names, t.retention) for t in targets] == [
        ("old-name", True, KEEP)
    ]
    assert failures == [failure(named, "no server with id 9")]
    assert (failures[0].server_name, failures[0].account, failures[0].provider) == (
        "old-name",
        "hz",
        "hetzner",
    )


def test_a_targets_drill_and_each_servers_region_reach_its_targets():
    drill = Drill(every=Duration(days=7), probe=("true",))
    servers = [Server("1", "a", region="fsn1"), Server("2", "b")]
    targets, _ = resolve([replace(spec("web", ids=("1", "2")), drill=drill)], servers, {})
    assert [(t.drill, t.region) for t in targets] == [(drill, "fsn1"), (drill, None)]
