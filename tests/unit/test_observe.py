"""observe: one account's surprise stays that account's (docs/promises.md §5); a fleet is read in
linear time, its accounts at the same time, each label selector once (docs/promises.md §8,
issue 13)."""

from __future__ import annotations

import random
import threading
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from snapshot_policy.core import copies
from snapshot_policy.core.model import (
    Account,
    CloudSnapshot,
    ProviderError,
    RetentionPolicy,
    Selector,
    Server,
    Target,
    TargetSpec,
)
from snapshot_policy.core.ownership import (
    DIGITALOCEAN_TAG,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SERVER_ID_LABEL,
    by_server,
    snapshots_for,
)
from snapshot_policy.engine.observe import _with_pending, _with_transfers, observe
from snapshot_policy.state.journal import Journal
from tests.factories import snap
from tests.factories import target as hetzner_target

BROKEN = Account("broken", "hetzner", "t0ken-broken")


def test_observe_turns_any_exception_of_one_account_into_its_targets_failures():
    """An SDK that raises what it was not meant to (TypeError on an unexpected reply) must not
    end the run or take other accounts' results with it."""

    def connect(account):
        raise TypeError("unexpected keyword argument 'next_cursor'")

    specs = [
        TargetSpec(name, BROKEN, Selector(ids=("1",)), RetentionPolicy(keep_last=1))
        for name in ("a", "b")
    ]
    observation = observe(specs, connect)
    assert [(f.target, f.account, f.reason) for f in observation.failures] == [
        ("a", "broken", "cannot read account broken: unexpected TypeError while reading it"),
        ("b", "broken", "cannot read account broken: unexpected TypeError while reading it"),
    ]
    assert observation.observed == []


# -- reading a fleet: grouped listings, concurrent accounts, one listing per selector (issue 13) --

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
DO = Account("do", "digitalocean", "t0ken-do")
HZ = Account("hz", "hetzner", "t0ken-hz")


class FakeProvider:
    """A provider over plain values that records what it was asked; `hold` runs before each
    listing (to make accounts wait for one another)."""

    def __init__(self, name, servers, snapshots, selectors=None, hold=lambda call: None):
        self.name, self.requests = name, 0
        self._servers, self._snapshots, self._selectors, self._hold = (
            servers,
            snapshots,
            selectors or {},
            hold,
        )
        self.calls: list[tuple[str, str | None]] = []
        self.unsettled: list[str] = []

    def servers(self, selector=None):
        self.calls.append(("servers", selector))
        self._hold(("servers", selector))
        return list(self._servers) if selector is None else list(self._selectors.get(selector, []))

    def snapshots(self):
        self.calls.append(("snapshots", None))
        self._hold(("snapshots", None))
        return list(self._snapshots)


def mixed_listing(
    rng: random.Random, account: Account, servers: list[Server], gone: list[str]
) -> list[CloudSnapshot]:
    """Snapshots of listed and deleted servers and of none: ours, legacy-named, manual, and
    ours by another server's marker."""
    listing = []
    names = {s.id: s.name for s in servers}
    for number in range(400):
        server_id = rng.choice([*names, *gone, None])
        created = NOW - timedelta(hours=rng.randint(1, 2000))
        name = (
            f"{names.get(server_id, 'gone')}-{created:%Y%m%d%H%M%S}"
            if rng.random() < 0.7
            else f"manual-{number}"
        )
        kind = rng.choice(["ours", "ours", "plain", "elsewhere"])
        marked_for = server_id if kind == "ours" else rng.choice(list(names))
        if kind == "plain":
            labels = {}
        elif account.provider == "digitalocean":
            labels = {DIGITALOCEAN_TAG: ""}
        else:
            labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, SERVER_ID_LABEL: str(marked_for)}
        listing.append(CloudSnapshot(f"{account.name}-{number}", name, created, server_id, labels))
    return listing


def test_by_server_gives_each_server_what_a_scan_of_the_whole_listing_gives():
    rng = random.Random(13)
    servers = [Server(str(i), f"web-{i}") for i in range(1, 21)]
    for account in (DO, HZ):
        listing = mixed_listing(rng, account, servers, gone=["98", "99"])
        grouped = by_server(listing)
        assert sum(len(v) for v in grouped.values()) == len(listing)
        for server in servers:
            for adopt in (False, True):
                target = Target(
                    "t",
                    account.provider,
                    account.name,
                    server.id,
                    server.name,
                    RetentionPolicy(keep_last=1),
                    adopt_legacy_names=adopt,
                )
                pending = {s.name: s.created for s in listing[:40] if s.server_id == server.id}
                assert snapshots_for(target, grouped.get(server.id, []), pending) == snapshots_for(
                    target, listing, pending
                )


def test_observe_matches_the_per_target_scan_for_a_mixed_fleet(tmp_path):
    """Targets by ids, names and selectors, legacy adoption, journal-pending and in-flight
    names, orphans: each target's snapshots are exactly those the whole-listing scan gives."""
    rng = random.Random(5)
    journal = Journal(tmp_path / "journal.json", timedelta(hours=1), NOW)
    providers, specs, unmarked_names = {}, [], {}
    for account, offset in ((DO, 100), (HZ, 200)):
        servers = [Server(str(offset + i), f"{account.name}-{i}") for i in range(12)]
        listing = mixed_listing(rng, account, servers, gone=[str(offset + 90), str(offset + 91)])
        selected = {"role=db": servers[8:10], "role=none": []}
        providers[account.name] = FakeProvider(account.provider, servers, listing, selected)
        specs += [
            TargetSpec(
                f"{account.name}-ids",
                account,
                Selector(ids=tuple(s.id for s in servers[:4])),
                RetentionPolicy(keep_last=2),
            ),
            TargetSpec(
                f"{account.name}-names",
                account,
                Selector(names=tuple(s.name for s in servers[4:8])),
                RetentionPolicy(keep_last=2),
                adopt_legacy_names=True,
            ),
            TargetSpec(
                f"{account.name}-db",
                account,
                Selector(label_selector="role=db"),
                RetentionPolicy(keep_last=2),
            ),
            TargetSpec(
                f"{account.name}-empty",
                account,
                Selector(label_selector="role=none"),
                RetentionPolicy(keep_last=2),
            ),
        ]
        unmarked = next(s for s in listing if not s.labels and s.server_id == servers[0].id)
        unmarked_names[offset] = unmarked.name
        journal.started(
            account.name, servers[0].id, unmarked.name, unmarked.created
        )  # listed, made by that start: adopted
        journal.started(
            account.name,
            servers[1].id,
            f"{servers[1].name}-20261126115500",
            NOW - timedelta(minutes=5),
        )  # not listed yet

    observation = observe(
        specs,
        lambda account: providers[account.name],
        orphans=True,
        orphans_keep_last=1,
        journal=journal,
        now=NOW,
    )

    assert [f.target for f in observation.failures] == ["do-empty", "hz-empty"]
    observed_servers = [(t.account, t.name, t.server_id) for t, _ in observation.observed]
    expected = []
    for account, offset in ((DO, 100), (HZ, 200)):
        expected += [(account.name, f"{account.name}-ids", str(offset + i)) for i in range(4)]
        expected += [(account.name, f"{account.name}-names", str(offset + i)) for i in range(4, 8)]
        expected += [(account.name, f"{account.name}-db", str(offset + i)) for i in (8, 9)]
        expected += [(account.name, "(orphans)", str(offset + i)) for i in (90, 91)]
    assert observed_servers == expected
    for target, snapshots in observation.observed:
        listing = providers[target.account].snapshots()
        assert snapshots == _with_pending(target, listing, journal, timedelta(hours=1)), target
    adopted = [s for t, snaps in observation.observed for s in snaps if s.unmarked]
    creating = [s for t, snaps in observation.observed for s in snaps if s.creating and not s.id]
    assert {(s.server_id, s.name) for s in adopted} == {
        (str(offset), unmarked_names[offset]) for offset in (100, 200)
    }
    assert len(creating) == 2


def test_observe_reads_accounts_at_the_same_time():
    """Each account's server listing waits for the other's: read one after another, the
    barrier would break and both accounts would fail."""
    barrier = threading.Barrier(2, timeout=10)

    def hold(call):
        if call == ("servers", None):
            barrier.wait()

    providers = {
        a.name: FakeProvider(a.provider, [Server("1", "web")], [], hold=hold) for a in (DO, HZ)
    }
    specs = [
        TargetSpec(a.name, a, Selector(ids=("1",)), RetentionPolicy(keep_last=1)) for a in (DO, HZ)
    ]
    observation = observe(specs, lambda account: providers[account.name])
    assert observation.failures == []
    assert [t.name for t, _ in observation.observed] == ["do", "hz"]


def test_observe_keeps_the_specs_order_whichever_account_answers_first():
    """The first account is held until the second has listed its snapshots."""
    second_done = threading.Event()
    first = FakeProvider(
        DO.provider, [Server("1", "web")], [], hold=lambda call: second_done.wait(10)
    )
    second = FakeProvider(
        HZ.provider,
        [Server("2", "app")],
        [],
        hold=lambda call: call[0] == "snapshots" and second_done.set(),
    )
    providers = {DO.name: first, HZ.name: second}
    specs = [
        TargetSpec("do-web", DO, Selector(ids=("1",)), RetentionPolicy(keep_last=1)),
        TargetSpec("hz-app", HZ, Selector(ids=("2",)), RetentionPolicy(keep_last=1)),
    ]
    observation = observe(specs, lambda account: providers[account.name])
    assert [t.name for t, _ in observation.observed] == ["do-web", "hz-app"]
    assert list(observation.providers) == ["do", "hz"]


def test_observe_read_concurrently_still_fails_only_the_account_that_failed():
    broken_api = Account("broken-api", "hetzner", "t0ken-1")
    broken_sdk = Account("broken-sdk", "digitalocean", "t0ken-2")

    class Refusing(FakeProvider):
        def snapshots(self):
            raise ProviderError("hetzner", "list snapshots", 401, "unauthorized")

    providers = {
        DO.name: FakeProvider(DO.provider, [Server("1", "web")], []),
        broken_api.name: Refusing(broken_api.provider, [Server("2", "app")], []),
        HZ.name: FakeProvider(HZ.provider, [Server("3", "db")], []),
    }

    def connect(account):
        if account is broken_sdk:
            raise TypeError("unexpected keyword argument 'next_cursor'")
        return providers[account.name]

    specs = [
        TargetSpec("a", broken_sdk, Selector(ids=("9",)), RetentionPolicy(keep_last=1)),
        TargetSpec("b", DO, Selector(ids=("1",)), RetentionPolicy(keep_last=1)),
        TargetSpec("c", broken_api, Selector(ids=("2",)), RetentionPolicy(keep_last=1)),
        TargetSpec("d", HZ, Selector(ids=("3",)), RetentionPolicy(keep_last=1)),
        TargetSpec("e", broken_sdk, Selector(ids=("8",)), RetentionPolicy(keep_last=1)),
    ]
    observation = observe(specs, connect)
    assert [(f.target, f.account) for f in observation.failures] == [
        ("a", "broken-sdk"),
        ("e", "broken-sdk"),
        ("c", "broken-api"),
    ]
    assert (
        observation.failures[0].reason
        == "cannot read account broken-sdk: unexpected TypeError while reading it"
    )
    assert "unauthorized" in observation.failures[2].reason
    assert [t.name for t, _ in observation.observed] == ["b", "d"]
    assert sorted(observation.providers) == ["do", "hz"]


@pytest.mark.parametrize("account", [DO, HZ], ids=["digitalocean", "hetzner"])
def test_observe_lists_each_distinct_selector_once(account):
    servers = [Server(str(i), f"s-{i}") for i in range(1, 5)]
    provider = FakeProvider(
        account.provider, servers, [], {"a": servers[:1], "b": servers[1:2], "c": servers[2:3]}
    )
    specs = [
        TargetSpec(
            f"t{i}", account, Selector(label_selector=selector), RetentionPolicy(keep_last=1)
        )
        for i, selector in enumerate("abcab")
    ]
    specs.append(TargetSpec("by-id", account, Selector(ids=("4",)), RetentionPolicy(keep_last=1)))
    observation = observe(specs, lambda _: provider)
    assert provider.calls == [
        ("servers", None),
        ("servers", "a"),
        ("servers", "b"),
        ("servers", "c"),
        ("snapshots", None),
    ]
    # The same selector twice claims the same server twice: both targets fail, as before.
    assert sorted({f.target for f in observation.failures}) == ["t0", "t1", "t3", "t4"]
    assert [(t.name, t.server_id) for t, _ in observation.observed] == [("t2", "3"), ("by-id", "4")]


def test_observe_finds_servers_by_name_in_listing_order_and_by_id_once_per_account():
    """A name or id that is missing fails its target; the servers it does find are still targets."""
    servers = [Server("1", "twin"), Server("2", "solo"), Server("3", "twin")]
    provider = FakeProvider(HZ.provider, servers, [])
    specs = [
        TargetSpec("twins", HZ, Selector(names=("twin", "nobody")), RetentionPolicy(keep_last=1)),
        TargetSpec("solo", HZ, Selector(names=("solo",)), RetentionPolicy(keep_last=1)),
        TargetSpec("ids", HZ, Selector(ids=("7", "1")), RetentionPolicy(keep_last=1)),
    ]
    observation = observe(specs, lambda _: provider)
    assert [(f.target, f.reason) for f in observation.failures][:2] == [
        ("twins", "no server named 'nobody'"),
        ("ids", "no server with id 7"),
    ]
    # The servers found are still targets, except twin 1, which twins and ids both claim.
    assert [(t.name, t.server_id) for t, _ in observation.observed] == [
        ("twins", "3"),
        ("solo", "2"),
    ]
    specs[0] = TargetSpec("twins", HZ, Selector(names=("twin",)), RetentionPolicy(keep_last=1))
    observation = observe(specs[:2], lambda _: provider)
    assert [(t.name, t.server_id) for t, _ in observation.observed] == [
        ("twins", "1"),
        ("twins", "3"),
        ("solo", "2"),
    ]


def test_an_unknown_server_name_gets_a_did_you_mean_from_the_account():
    provider = FakeProvider(HZ.provider, [Server("1", "db-1"), Server("2", "web-1")], [])
    spec = TargetSpec("db", HZ, Selector(names=("db-1", "db1x")), RetentionPolicy(keep_last=1))
    observation = observe([spec], lambda _: provider)
    assert [(f.target, f.reason) for f in observation.failures] == [
        ("db", "no server named 'db1x'; did you mean 'db-1'?")
    ]
    assert [(t.name, t.server_id) for t, _ in observation.observed] == [("db", "1")]


# -- views that disagree (issue 19) --


def test_a_listing_that_kept_changing_withholds_accounts_deletions_and_makes_no_absence_certain():
    gone = CloudSnapshot(
        "9",
        "old-20261101000000",
        NOW - timedelta(days=20),
        "77",
        {MANAGED_BY_LABEL: MANAGED_BY_VALUE, SERVER_ID_LABEL: "77"},
    )
    shifting = FakeProvider(HZ.provider, [Server("1", "web")], [gone])
    shifting.unsettled = ["the snapshot listing changed while it was read, 3 times"]
    steady = FakeProvider(DO.provider, [Server("2", "app")], [])
    providers = {HZ.name: shifting, DO.name: steady}
    specs = [
        TargetSpec("web", HZ, Selector(ids=("1",)), RetentionPolicy(keep_last=1)),
        TargetSpec("app", DO, Selector(ids=("2",)), RetentionPolicy(keep_last=1)),
    ]
    observation = observe(
        specs,
        lambda account: providers[account.name],
        absent_since={("hz", "77"): NOW - timedelta(days=3)},
        now=NOW,
        orphans_keep_last=0,
    )
    assert observation.withheld == {
        "hz": "deletions withheld: the snapshot listing changed while it was read, 3 times; "
        "two views of account hz disagree"
    }
    assert "hz" not in observation.absent and observation.absent["do"] == set()
    orphan = next(t for t, _ in observation.observed if t.orphan)
    assert not orphan.retention.has_rules  # kept whole: absence is not certain


def test_a_droplet_naming_snapshots_the_listing_lacks_fails_its_target():
    """DigitalOcean's droplet lists its snapshot ids: one the account listing lacks shows the
    listing is incomplete for that droplet — no create, no delete, and a failure that says so."""
    listed = CloudSnapshot(
        "501", "web-20261120000000", NOW - timedelta(days=6), "1", {DIGITALOCEAN_TAG: ""}
    )
    servers = [
        Server("1", "web", snapshot_ids=("501", "502")),
        Server("2", "app", snapshot_ids=()),
        Server("3", "db"),
    ]
    provider = FakeProvider(DO.provider, servers, [listed])
    specs = [
        TargetSpec(n, DO, Selector(ids=(i,)), RetentionPolicy(keep_last=1))
        for n, i in (("web", "1"), ("app", "2"), ("db", "3"))
    ]
    observation = observe(specs, lambda _: provider, now=NOW)
    assert [(f.target, f.reason) for f in observation.failures] == [
        (
            "web",
            "server web (1) names snapshot(s) 502 that the account's snapshot listing lacks: "
            "the listing is incomplete, so nothing is created or deleted for it this run",
        ),
    ]
    assert [t.name for t, _ in observation.observed] == ["app", "db"]
    assert observation.absent == {}  # an incomplete listing proves no absence


def test_a_listing_the_pure_core_cannot_take_fails_only_its_accounts_targets():
    """A reply that parsed but holds what no snapshot holds (here: not a snapshot at all) trips
    the decisions made from it, not the read: still that account's alone."""
    providers = {
        DO.name: FakeProvider(DO.provider, [Server("1", "web")], []),
        HZ.name: FakeProvider(HZ.provider, [Server("3", "db")], [object()]),
    }
    specs = [
        TargetSpec("b", DO, Selector(ids=("1",)), RetentionPolicy(keep_last=1)),
        TargetSpec("d", HZ, Selector(ids=("3",)), RetentionPolicy(keep_last=1)),
    ]
    observation = observe(specs, lambda account: providers[account.name])
    assert [(f.target, f.reason) for f in observation.failures] == [
        ("d", "cannot read account hz: unexpected AttributeError while reading it")
    ]
    assert [t.name for t, _ in observation.observed] == ["b"]
    assert sorted(observation.providers) == ["do"]


# -- what status needs (issue 22) --------------------------------------------------------------


def test_observe_keeps_each_accounts_listings_and_lists_also_select_once():
    servers = [Server("1", "web-1"), Server("2", "build-1"), Server("3", "tmp-1")]
    listing = [CloudSnapshot("9", "manual", NOW, "2")]
    provider = FakeProvider("hetzner", servers, listing, {"role=web": servers[:1]})
    specs = [
        TargetSpec("web", HZ, Selector(label_selector="role=web"), RetentionPolicy(keep_last=1))
    ]
    observation = observe(specs, lambda _: provider, also_select=["temp", "role=web"])
    assert provider.calls == [
        ("servers", None),
        ("servers", "role=web"),
        ("servers", "temp"),
        ("snapshots", None),
    ]
    assert observation.servers == {"hz": servers} and observation.snapshots == {"hz": listing}
    assert observation.selected == {"hz": {"role=web": servers[:1], "temp": []}}
    assert observation.unreadable == {}


def test_an_unreadable_account_is_named_with_why():
    def connect(account):
        raise ProviderError("hetzner", "list servers", 401, "unauthorized")

    spec = TargetSpec("web", HZ, Selector(ids=("1",)), RetentionPolicy(keep_last=1))
    observation = observe([spec], connect)
    assert observation.unreadable == {"hz": "hetzner list servers failed (HTTP 401): unauthorized"}
    assert observation.servers == {}


# -- copies in other regions (docs/promises.md §5.15) ------------------------------------------


def test_transfers_that_cannot_be_read_count_as_running_so_none_is_started_twice():
    class Unreadable:
        asked: list = []

        def transfers(self, ids):
            self.asked.append(list(ids))
            raise ProviderError("digitalocean", "list actions", 503, "unavailable")

    web = replace(hetzner_target(keep_last=2), provider="digitalocean", copies=("ams3", "fra1"))
    newest = snap(NOW, id="n")
    newest = replace(
        newest, cloud=CloudSnapshot("n", newest.name, NOW, "1", regions=("nyc3", "ams3"))
    )
    older = snap(NOW - timedelta(days=1), id="o")
    provider = Unreadable()
    ((_, seen),) = _with_transfers(provider, [(web, [newest, older])])
    assert provider.asked == [["n"]]
    (found,) = [s for s in seen if s.id == "n"]
    assert found.cloud.pending_regions == ("fra1",)
    assert copies.to_transfer(web, found) == ()  # nothing is started
    assert copies.held(web, seen).startswith("held: the newest snapshot has no copy in fra1 yet")


def test_no_transfer_is_read_when_every_newest_snapshot_has_its_copies():
    class Silent:
        def transfers(self, ids):
            raise AssertionError("not to be asked")

    web = replace(hetzner_target(keep_last=2), provider="digitalocean", copies=("ams3",))
    newest = snap(NOW, id="n")
    newest = replace(
        newest, cloud=CloudSnapshot("n", newest.name, NOW, "1", regions=("nyc3", "ams3"))
    )
    observed = [(web, [newest])]
    assert _with_transfers(Silent(), observed) is observed
