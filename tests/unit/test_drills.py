"""Restore drills' pure decisions (core/drills.py): due, which snapshot, which machine, what
it costs, and which leftover drill servers may be deleted (docs/promises.md §5)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapshot_policy.core import drills, ownership
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    DIGITALOCEAN,
    HETZNER,
    CloudSnapshot,
    Drill,
    DrillMark,
    MachineType,
    MadeServer,
    OpenDrill,
)
from tests.factories import snap, target, utc

NOW = utc(2026, 12, 7, 3)
WEEKLY = Drill(every=Duration(days=7))
HZ = replace(target(keep_last=3), drill=WEEKLY, owner="prod")
DO = replace(HZ, provider=DIGITALOCEAN)


@dataclass(frozen=True)
class Last:
    when: datetime
    passed: bool = True
    snapshot_id: str = "1"


def open_drill(name, when, server_id=None):
    """A drill server the journal holds open (state/journal.open_drills)."""
    return OpenDrill("hz", "web", "101", name, "9001", when, server_id)


def machine(name, disk, price, regions=("nyc3",), arch="x86", available=True, currency="USD"):
    return MachineType(name, disk, tuple(regions), price, currency, arch, available)


def with_cloud(snapshot, min_disk=None, regions=(), arch=None, labels=None):
    cloud = CloudSnapshot(
        snapshot.id,
        snapshot.name,
        snapshot.created,
        snapshot.server_id,
        labels or {},
        min_disk_gb=min_disk,
        regions=tuple(regions),
        architecture=arch,
    )
    return replace(snapshot, cloud=cloud)


# -- drill_due -------------------------------------------------------------------------------


def test_never_drilled_is_due():
    assert drills.drill_due(HZ, None, [snap(NOW)], NOW) == (True, "never drilled")


def test_a_target_without_a_drill_is_never_due():
    assert drills.drill_due(replace(HZ, drill=None), None, [], NOW)[0] is False


def test_due_every_interval_since_the_run_states_last_drill():
    assert drills.drill_due(HZ, Last(NOW - timedelta(days=7)), [], NOW) == (
        True,
        "last drill 2026-11-30 (passed) is 7d old or more",
    )
    assert drills.drill_due(HZ, Last(NOW - timedelta(days=6), passed=False), [], NOW) == (
        False,
        "not due: last drill 2026-12-01 (failed)",
    )


def test_a_run_a_little_early_still_finds_the_drill_due():
    assert drills.drill_due(HZ, Last(NOW - timedelta(days=7) + timedelta(minutes=30)), [], NOW)[0]
    assert not drills.drill_due(HZ, Last(NOW - timedelta(days=6, hours=22)), [], NOW)[0]


def test_without_a_record_the_newest_mark_on_the_snapshots_counts():
    marked = replace(snap(NOW - timedelta(days=9)), drilled=DrillMark(True, date(2026, 12, 3)))
    old = replace(snap(NOW - timedelta(days=20)), drilled=DrillMark(False, date(2026, 11, 1)))
    assert drills.drill_due(HZ, None, [old, marked], NOW) == (
        False,
        "not due: last drill 2026-12-03 (passed)",
    )


def test_a_mark_newer_than_the_record_counts():
    marked = replace(snap(NOW), drilled=DrillMark(False, date(2026, 12, 5)))
    due, note = drills.drill_due(HZ, Last(NOW - timedelta(days=30)), [marked], NOW)
    assert (due, note) == (False, "not due: last drill 2026-12-05 (failed)")


def test_marks_on_unmanaged_snapshots_do_not_count():
    foreign = replace(snap(NOW, managed=False), drilled=DrillMark(True, date(2026, 12, 6)))
    assert drills.drill_due(HZ, None, [foreign], NOW) == (True, "never drilled")


def test_a_record_from_the_future_is_not_believed():
    assert drills.drill_due(HZ, Last(NOW + timedelta(days=2)), [], NOW) == (True, "never drilled")


def test_calendar_intervals_count_on_the_calendar():
    monthly = replace(HZ, drill=Drill(every=Duration(months=1)))
    assert drills.drill_due(monthly, Last(utc(2026, 11, 7, 3)), [], NOW)[0]
    assert not drills.drill_due(monthly, Last(utc(2026, 11, 8, 3)), [], NOW)[0]


# -- choose_snapshot -------------------------------------------------------------------------


def test_the_newest_managed_finished_snapshot_is_restored():
    newest = snap(NOW - timedelta(hours=1))
    creating = snap(NOW, creating=True)
    foreign = snap(NOW - timedelta(minutes=1), managed=False)
    future = snap(NOW + timedelta(days=1))
    older = snap(NOW - timedelta(days=1))
    chosen = drills.choose_snapshot([older, creating, foreign, future, newest], NOW)
    assert chosen is newest
    assert drills.choose_snapshot([creating, foreign]) is None


# -- choose_machine --------------------------------------------------------------------------


DO_SIZES = [
    machine("s-1vcpu-512mb-10gb", 10, 0.006, ("nyc3", "ams3")),
    machine("s-1vcpu-1gb", 25, 0.00893, ("nyc3", "ams3", "fra1")),
    machine("s-2vcpu-2gb", 60, 0.02679, ("nyc3", "ams3", "fra1", "sgp1")),
    machine("s-1vcpu-1gb-old", 25, 0.001, ("nyc3",), available=False),
]


def test_digitalocean_takes_the_cheapest_size_whose_disk_fits_in_the_servers_region():
    snapshot = with_cloud(snap(NOW), min_disk=25, regions=("fra1", "ams3"))
    chosen = drills.choose_machine(WEEKLY, snapshot, DO_SIZES, "fra1")
    assert chosen == (DO_SIZES[1], "fra1")


def test_a_region_the_snapshot_is_in_is_taken_when_the_servers_region_has_no_fit():
    snapshot = with_cloud(snap(NOW), min_disk=30, regions=("sgp1", "fra1"))
    machine_, region = drills.choose_machine(WEEKLY, snapshot, DO_SIZES, "nyc3")
    assert (machine_.name, region) == ("s-2vcpu-2gb", "fra1")


def test_no_size_in_the_snapshots_regions_is_a_refusal():
    snapshot = with_cloud(snap(NOW), min_disk=100, regions=("nyc3",))
    assert drills.choose_machine(WEEKLY, snapshot, DO_SIZES, "nyc3") == (
        "no available machine type has a disk of 100 GB or more in the snapshot's regions (nyc3)"
    )


def test_hetzner_matches_the_architecture_and_skips_deprecated_types():
    types = [
        machine("cax11", 40, 0.0066, ("fsn1", "nbg1"), arch="arm", currency="EUR"),
        machine("cx11", 20, 0.005, ("fsn1",), available=False, currency="EUR"),
        machine("cx22", 40, 0.0072, ("fsn1", "hel1"), currency="EUR"),
        machine("cpx11", 40, 0.0082, ("fsn1", "hel1"), currency="EUR"),
    ]
    snapshot = with_cloud(snap(NOW), min_disk=20, arch="x86")
    assert drills.choose_machine(WEEKLY, snapshot, types, "hel1") == (types[2], "hel1")
    arm = with_cloud(snap(NOW), min_disk=20, arch="arm")
    assert drills.choose_machine(WEEKLY, arm, types, "hel1") == (types[0], "fsn1")


def test_a_configured_machine_type_must_fit():
    snapshot = with_cloud(snap(NOW), min_disk=25, regions=("nyc3",))
    fixed = replace(WEEKLY, machine_type="s-2vcpu-2gb")
    assert drills.choose_machine(fixed, snapshot, DO_SIZES, "nyc3") == (DO_SIZES[2], "nyc3")
    small = replace(WEEKLY, machine_type="s-1vcpu-512mb-10gb")
    assert drills.choose_machine(small, snapshot, DO_SIZES, "nyc3") == (
        "machine_type s-1vcpu-512mb-10gb has a 10 GB disk; the snapshot needs 25 GB"
    )
    old = replace(WEEKLY, machine_type="s-1vcpu-1gb-old")
    assert "is not available" in drills.choose_machine(old, snapshot, DO_SIZES, "nyc3")
    unknown = replace(WEEKLY, machine_type="huge")
    assert drills.choose_machine(unknown, snapshot, DO_SIZES, "nyc3") == (
        "machine_type 'huge' is not offered by the account; "
        "leave machine_type out to take the cheapest that fits"
    )


machine_types = st.lists(
    st.builds(
        machine,
        name=st.sampled_from(["a", "b", "c", "d", "e"]),
        disk=st.sampled_from([10, 20, 25, 40, 80]),
        price=st.sampled_from([0.005, 0.01, 0.02]),
        regions=st.lists(st.sampled_from(["r1", "r2", "r3"]), max_size=3).map(tuple),
        arch=st.sampled_from(["x86", "arm"]),
        available=st.booleans(),
    ),
    max_size=8,
)


@settings(max_examples=300, deadline=None)
@given(
    machine_types,
    st.sampled_from([None, 10, 25, 50]),
    st.lists(st.sampled_from(["r1", "r2", "r3"]), max_size=3),
    st.sampled_from([None, "x86", "arm"]),
    st.sampled_from([None, "r1", "r2"]),
)
def test_a_chosen_machine_always_fits_and_is_the_cheapest(types, disk, regions, arch, preferred):
    snapshot = with_cloud(snap(NOW), min_disk=disk, regions=regions, arch=arch)
    chosen = drills.choose_machine(WEEKLY, snapshot, types, preferred)
    fits = [
        (m, r)
        for m in types
        for r in m.regions
        if m.available
        and m.disk_gb >= (disk or 0)
        and (arch is None or m.architecture == arch)
        and (not regions or r in regions)
    ]
    if not fits:
        assert isinstance(chosen, str)
        return
    machine_, region = chosen
    assert (machine_, region) in fits
    here = [(m, r) for m, r in fits if r == preferred]
    assert machine_.price_hourly == min(m.price_hourly for m, _ in here or fits)


# -- drill_cost ------------------------------------------------------------------------------


def test_hetzner_bills_every_started_hour():
    cx22 = machine("cx22", 40, 0.0072, currency="EUR")
    assert drills.drill_cost(cx22, HETZNER, timedelta(minutes=20)) == pytest.approx(0.0072)
    assert drills.drill_cost(cx22, HETZNER, timedelta(minutes=61)) == pytest.approx(0.0144)
    assert drills.drill_cost(cx22, HETZNER, timedelta(0)) == pytest.approx(0.0072)


def test_digitalocean_bills_per_second_with_a_minimum():
    small = machine("s-1vcpu-1gb", 25, 0.00893)
    assert drills.drill_cost(small, DIGITALOCEAN, timedelta(minutes=20)) == 0.01
    big = machine("g-8vcpu-32gb", 100, 0.375)
    assert drills.drill_cost(big, DIGITALOCEAN, timedelta(minutes=20)) == pytest.approx(0.125)
    assert drills.drill_cost(big, DIGITALOCEAN, timedelta(seconds=5)) == 0.01
    gpu = machine("gpu", 500, 3.6)  # 60 s at least: $0.06, above the $0.01 minimum
    assert drills.drill_cost(gpu, DIGITALOCEAN, timedelta(seconds=5)) == pytest.approx(0.06)


def test_the_cost_estimate_is_the_longest_a_drill_runs_its_course():
    assert drills.drill_duration(WEEKLY) == timedelta(minutes=16)
    probed = replace(WEEKLY, probe=("true",))
    assert drills.drill_duration(probed) == timedelta(minutes=21)


# -- plan_drills -----------------------------------------------------------------------------


def test_a_due_drill_is_planned_with_its_snapshot_machine_region_name_and_cost():
    snapshot = with_cloud(snap(NOW - timedelta(hours=1)), min_disk=25, regions=("fra1",))
    (plan,) = drills.plan_drills(
        [(DO, [snapshot]), (replace(DO, name="nodrill", drill=None), [snapshot])],
        {"main": DO_SIZES},
        {},
        NOW,
        server_regions={("main", "1"): "fra1"},
    )
    assert (plan.due, plan.note, plan.refusal) == (True, "never drilled", None)
    assert plan.snapshot is snapshot
    assert (plan.machine_type.name, plan.region) == ("s-1vcpu-1gb", "fra1")
    assert plan.name == "drill-web-1-20261207030000"
    assert (plan.cost, plan.currency) == (0.01, "USD")


def test_a_drill_not_due_says_why():
    (plan,) = drills.plan_drills(
        [(HZ, [snap(NOW)])], {}, {("main", "1", "web"): Last(NOW - timedelta(days=1))}, NOW
    )
    assert (plan.due, plan.note, plan.machine_type) == (
        False,
        "not due: last drill 2026-12-06 (passed)",
        None,
    )


def test_forced_drills_are_due_whatever_the_record():
    last = {("main", "1", "web"): Last(NOW - timedelta(days=1))}
    snapshot = with_cloud(snap(NOW), min_disk=25, regions=("nyc3",))
    (plan,) = drills.plan_drills([(DO, [snapshot])], {"main": DO_SIZES}, last, NOW, forced=True)
    assert (plan.due, plan.note, plan.refusal) == (True, "run now (drill command)", None)


def test_due_drills_are_refused_without_a_snapshot_or_machine_types():
    (none,) = drills.plan_drills([(HZ, [])], {"main": []}, {}, NOW)
    assert none.refusal == "no managed snapshot to restore yet"
    (unread,) = drills.plan_drills([(HZ, [snap(NOW)])], {}, {}, NOW)
    assert unread.refusal == "the machine types of account main could not be read"
    (nofit,) = drills.plan_drills([(HZ, [snap(NOW)])], {"main": []}, {}, NOW)
    assert nofit.refusal == "no available machine type has a disk of 0 GB or more"


# -- leftovers -------------------------------------------------------------------------------


def made(id, name, owner="prod", provider=HETZNER, marked=True):
    labels = ownership.drill_server_labels(provider, owner, "web", "7") if marked else {}
    return MadeServer(id, name, "running", labels=labels)


def test_a_journaled_listed_marked_server_is_deleted():
    server = made("5", "drill-web-1-x")
    entry = open_drill("drill-web-1-x", NOW - timedelta(hours=1), "5")
    found = drills.leftovers([entry], [server], True, "prod", HETZNER, NOW)
    assert found == drills.Leftovers(delete=((entry, server),))


def test_a_lost_reply_is_matched_by_exact_name():
    server = made("5", "drill-web-1-x")
    entry = open_drill("drill-web-1-x", NOW - timedelta(hours=1))
    found = drills.leftovers(
        [entry], [server, made("6", "drill-web-1-xy")], True, "prod", HETZNER, NOW
    )
    assert found.delete == ((entry, server),)
    assert [s.id for s in found.unknown] == ["6"]


def test_a_drill_server_nobody_journaled_is_only_reported():
    server = made("5", "drill-web-1-x")
    found = drills.leftovers(
        [], [server, made("6", "x", owner="other")], True, "prod", HETZNER, NOW
    )
    assert found == drills.Leftovers(unknown=(server,))


def test_journaled_servers_without_our_marks_or_renamed_are_refused():
    unmarked = made("5", "drill-a", marked=False)
    foreign = made("6", "drill-b", owner="other")
    renamed = made("7", "my-db")
    entries = [
        open_drill("drill-a", NOW, "5"),
        open_drill("drill-b", NOW),
        open_drill("drill-c", NOW, "7"),
    ]
    found = drills.leftovers(entries, [unmarked, foreign, renamed], True, "prod", HETZNER, NOW)
    assert found.delete == ()
    assert [s.id for s, _ in found.refused] == ["5", "7"]  # 6 is not ours: no match at all
    assert found.waiting == tuple(entries)
    assert "renamed from drill-c to my-db" in found.refused[1][1]


def test_a_lost_reply_never_takes_another_configurations_server_of_that_name():
    foreign = made("6", "drill-b", owner="other")
    entry = open_drill("drill-b", NOW - timedelta(hours=1))
    found = drills.leftovers([entry], [foreign], True, "prod", HETZNER, NOW)
    assert found == drills.Leftovers(settle=(entry,))  # ours never came: crossed off, once old


def test_an_absent_server_is_crossed_off_only_from_a_complete_listing_and_once_old():
    old = open_drill("drill-a", NOW - timedelta(hours=1), "5")
    young = open_drill("drill-b", NOW - timedelta(minutes=2))
    assert drills.leftovers([old, young], [], True, "prod", HETZNER, NOW) == drills.Leftovers(
        settle=(old,), waiting=(young,)
    )
    assert drills.leftovers([old], [], False, "prod", HETZNER, NOW) == drills.Leftovers(
        waiting=(old,)
    )


def test_a_young_entry_with_its_server_id_absent_from_the_listing_is_asked_for_by_id():
    """A run killed once its drill server's id was journaled, and the next run minutes later
    finds it missing from the drill listing (one that lags behind a create). Left waiting
    for the margin, which is for lost replies known by name alone, the server outlived that
    run; `settle` has the engine read it by id (deleted if there, crossed off if gone)."""
    young = open_drill("drill-a", NOW - timedelta(minutes=2), "5")
    assert drills.leftovers([young], [], True, "prod", HETZNER, NOW) == drills.Leftovers(
        settle=(young,)
    )


def test_two_servers_answering_to_one_lost_reply_are_not_deleted():
    twins = [made(id, "drill-a", provider=DIGITALOCEAN) for id in ("5", "6")]
    entry = open_drill("drill-a", NOW)
    found = drills.leftovers([entry], twins, True, "prod", DIGITALOCEAN, NOW)
    assert found.delete == () and len(found.refused) == 2 and found.waiting == (entry,)


def servers(provider):
    return st.builds(
        lambda id, name, owner, marked: made(str(id), name, owner, provider, marked),
        st.integers(1, 6),
        st.sampled_from(["drill-a", "drill-b", "web-1", "db"]),
        st.sampled_from(["prod", "other", "PROD"]),
        st.booleans(),
    )


entries = st.builds(
    open_drill,
    st.sampled_from(["drill-a", "drill-b", "web-1"]),
    st.sampled_from([NOW, NOW - timedelta(hours=2)]),
    st.sampled_from([None, "1", "2", "3"]),
)


@pytest.mark.parametrize("provider", [HETZNER, DIGITALOCEAN])
@settings(max_examples=300, deadline=None)
@given(data=st.data(), whole=st.booleans())
def test_only_journaled_servers_with_our_drill_marks_are_ever_deleted(provider, data, whole):
    journal = data.draw(st.lists(entries, max_size=4))
    listed = data.draw(st.lists(servers(provider), max_size=6))
    found = drills.leftovers(journal, listed, whole, "prod", provider, NOW)
    for entry, server in found.delete:
        assert server in listed and entry in journal
        assert ownership.is_drill_server(provider, server.labels, "prod")
        assert server.name == entry.name
        assert entry.server_id in (None, server.id)
    for server in found.unknown:
        assert ownership.is_drill_server(provider, server.labels, "prod")
    settled = {id(e) for e in found.settle}
    for entry in found.settle:
        assert whole and not any(
            s.id == entry.server_id
            or (
                not entry.server_id
                and s.name == entry.name
                and not ownership.marks_another_owner(provider, s.labels, "prod")
            )
            for s in listed
        )
    assert len(found.settle) + len(found.waiting) + len(found.delete) == len(journal)
    assert len(settled) == len(found.settle)


def test_a_drill_looks_only_at_its_own_servers_snapshots():
    other = replace(
        snap(NOW, server_id="2"), drilled=DrillMark(True, date(2026, 12, 6))
    )  # another server's, newer and drilled yesterday
    mine = with_cloud(snap(NOW - timedelta(days=1)), min_disk=20, regions=("nyc3",))
    (plan,) = drills.plan_drills([(DO, [other, mine])], {"main": DO_SIZES}, {}, NOW)
    assert (plan.due, plan.note, plan.snapshot) == (True, "never drilled", mine)


def test_the_servers_own_region_comes_with_its_target():
    snapshot = with_cloud(snap(NOW), min_disk=25, regions=("fra1", "ams3", "nyc3"))
    (plan,) = drills.plan_drills(
        [(replace(DO, region="ams3"), [snapshot])], {"main": DO_SIZES}, {}, NOW
    )
    assert (plan.machine_type.name, plan.region) == ("s-1vcpu-1gb", "ams3")
