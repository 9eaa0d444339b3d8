"""Issue 19 through the real SDKs against the sandbox: listings that shift while their pages are
read (item 1), a new DigitalOcean image found after the listing shrank (9), bounded and
order-checked action reads (12, 12b), droplets naming their snapshots (18), busy servers (8)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import replace
from datetime import timedelta

import pytest

from snapshot_policy.core.model import (
    DIGITALOCEAN,
    HETZNER,
    CloudSnapshot,
    ProviderError,
    StartedSnapshot,
)
from snapshot_policy.edges.providers import digitalocean, paging
from tests.integration.conftest import DO_TOKEN, HZ_TOKEN
from tests.integration.test_providers import (  # noqa: F401 - fixtures
    BOTH,
    SERVERS,
    adapter,
    create,
    create_args,
    requests_to,
    sleeps,
)

ACCOUNT = {DIGITALOCEAN: "do-a", HETZNER: "hz-a"}
LISTING = {DIGITALOCEAN: r"^/v2/snapshots$", HETZNER: r"^/v1/images$"}
SERVER_LISTING = {DIGITALOCEAN: r"^/v2/droplets$", HETZNER: r"^/v1/servers$"}


def seed(sandbox, provider: str, count: int) -> None:
    """Give the account's first server `count` snapshots (ids from 1,000 up)."""
    server_id = int(SERVERS[provider][0])
    for n in range(count):
        sandbox.state.add_snapshot(ACCOUNT[provider], f"s{n}", server_id=server_id, id=1000 + n)


def listed_now(sandbox, provider: str) -> list[str]:
    """The account's snapshot ids as the sandbox holds them now."""
    return sorted(
        str(s.id) for s in sandbox.state.snapshots_of(sandbox.state.accounts[ACCOUNT[provider]])
    )


def pages_read(sandbox, provider: str, path: str) -> list[str]:
    return [
        r["query"].get("page", "1")
        for r in sandbox.requests(provider)
        if r["method"] == "GET" and r["path"] == path
    ]


def early(provider: str) -> dict:
    """A shift putting a new item before page 1's end, where the listing puts new ones first
    (Hetzner, read newest first) or an old id among the first (DigitalOcean, by id here)."""
    return {"ids": list(range(1, 100))} if provider == DIGITALOCEAN else {}


# -- item 1: listings that shift between their pages ----------------------------------------


@BOTH
def test_a_snapshot_added_while_the_listing_is_read_pushes_none_in_twice(
    sandbox, adapter, provider
):
    """The issue's case: a snapshot added before the read position after page 1 was served
    pushes page 1's last item onto page 2 as well. Read again: each once, the set of now."""
    seed(sandbox, provider, 450 if provider == DIGITALOCEAN else 120)
    sandbox.inject(
        "shift", service=provider, path=LISTING[provider], page=1, insert=1, **early(provider)
    )
    provider_api = adapter(provider)
    listed = [s.id for s in provider_api.snapshots()]
    assert len(listed) == len(set(listed))
    assert sorted(listed) == listed_now(sandbox, provider)
    assert provider_api.unsettled == []
    path = LISTING[provider].strip("^$")
    assert pages_read(sandbox, provider, path).count("1") == 2  # read again from page 1, once


@BOTH
def test_a_snapshot_deleted_while_the_listing_is_read_pulls_none_past_the_reader(
    sandbox, adapter, provider
):
    seed(sandbox, provider, 450 if provider == DIGITALOCEAN else 120)
    first_page = 1000 if provider == DIGITALOCEAN else 1119  # by id; Hetzner's newest first
    sandbox.inject("shift", service=provider, path=LISTING[provider], page=1, delete=[first_page])
    provider_api = adapter(provider)
    listed = sorted(s.id for s in provider_api.snapshots())
    assert listed == listed_now(sandbox, provider) and str(first_page) not in listed
    assert provider_api.unsettled == []


@BOTH
def test_a_listing_that_keeps_shifting_is_unsettled_and_still_holds_each_snapshot_once(
    sandbox, adapter, provider
):
    seed(sandbox, provider, 450 if provider == DIGITALOCEAN else 120)
    sandbox.inject(
        "shift", service=provider, path=LISTING[provider], count=None, insert=1, **early(provider)
    )
    provider_api = adapter(provider)
    listed = [s.id for s in provider_api.snapshots()]
    assert len(listed) == len(set(listed))
    name = "DigitalOcean" if provider == DIGITALOCEAN else "Hetzner"
    assert provider_api.unsettled == [
        f"{name}'s snapshot listing changed while it was read, each of the {paging.READS} times"
    ]
    assert pages_read(sandbox, provider, LISTING[provider].strip("^$")).count("1") == paging.READS
    assert all(token not in " ".join(provider_api.unsettled) for token in (DO_TOKEN, HZ_TOKEN))


@BOTH
def test_a_server_listing_that_shifts_is_read_again_and_one_that_keeps_shifting_is_unsettled(
    sandbox, adapter, provider
):
    for n in range(250 if provider == DIGITALOCEAN else 60):
        sandbox.state.add_server(ACCOUNT[provider], f"extra-{n}", id=5000 + n)
    shift = {
        "resource": "servers",
        "insert": 1,
        **({"ids": list(range(1, 100))} if provider == DIGITALOCEAN else {}),
    }
    sandbox.inject("shift", service=provider, path=SERVER_LISTING[provider], page=1, **shift)
    provider_api = adapter(provider)
    listed = [s.id for s in provider_api.servers()]
    assert sorted(listed) == sorted(
        str(s.id) for s in sandbox.state.servers_of(sandbox.state.accounts[ACCOUNT[provider]])
    )
    assert len(listed) == len(set(listed)) and provider_api.unsettled == []
    sandbox.inject("shift", service=provider, path=SERVER_LISTING[provider], count=None, **shift)
    listed = [s.id for s in provider_api.servers()]
    assert len(listed) == len(set(listed)) and len(provider_api.unsettled) == 1
    assert (
        "server listing" in provider_api.unsettled[0]
        or "droplet listing" in provider_api.unsettled[0]
    )


# -- item 18: droplets name their snapshots -------------------------------------------------


@BOTH
def test_servers_carry_the_snapshots_they_name_where_the_cloud_says(sandbox, adapter, provider):
    seed(sandbox, provider, 3)
    servers = {s.id: s for s in adapter(provider).servers()}
    first = servers[SERVERS[provider][0]]
    if provider == DIGITALOCEAN:
        assert first.snapshot_ids == ("1000", "1001", "1002")
        assert servers["102"].snapshot_ids == ()
    else:
        assert first.snapshot_ids is None  # Hetzner's servers name no snapshots


# -- item 9: DigitalOcean's new image after the listing shrank -------------------------------


def test_digitalocean_finds_its_new_image_though_an_unrelated_one_was_deleted_between_pages(
    sandbox, adapter
):
    seed(sandbox, DIGITALOCEAN, 200)  # the new image is the 201st: alone on page 2
    provider_api = adapter(DIGITALOCEAN)
    started = provider_api.start_snapshot(*create_args(DIGITALOCEAN))
    time.sleep(sandbox.state.action_seconds + 0.05)
    # it moves onto page 1
    sandbox.inject("shift", service=DIGITALOCEAN, path=LISTING[DIGITALOCEAN], page=1, delete=[1005])
    made = provider_api.progress([started])[started]
    assert isinstance(made, CloudSnapshot), made
    assert made.name == started.name and made.server_id == "101"
    tagged = sandbox.state.snapshots[int(made.id)].tags
    assert set(started.labels) <= set(tagged)
    # looked again there
    assert requests_to(sandbox, DIGITALOCEAN, "GET", "/v2/droplets/101/snapshots")


def test_digitalocean_takes_the_later_of_two_same_named_images_made_in_one_second(
    sandbox, adapter, clock
):
    """Another configuration's snapshot of the droplet with the same name, dated the same
    second (DigitalOcean dates to the second): the later one, by id, is ours to tag — never
    the other's (found by issue 19's state machine)."""
    server_id, name, labels = create_args(DIGITALOCEAN)
    theirs = sandbox.state.add_snapshot(
        ACCOUNT[DIGITALOCEAN], name, server_id=int(server_id), created=clock()
    )
    provider_api = adapter(DIGITALOCEAN)
    started = provider_api.start_snapshot(server_id, name, labels)
    time.sleep(sandbox.state.action_seconds + 0.05)
    made = provider_api.progress([started])[started]
    assert isinstance(made, CloudSnapshot), made
    assert made.id != str(theirs.id) and made.created == theirs.created
    assert not set(labels) & set(sandbox.state.snapshots[theirs.id].tags)


# -- item 12: DigitalOcean's action listing, bounded and order-checked ------------------------


def other_actions(sandbox, count: int) -> None:
    """`count` actions of other actors in the account, newer than anything before."""
    account = sandbox.state.accounts["do-a"]
    for _ in range(count):
        sandbox.state.instant_action(account, "rename", [])


def test_a_poll_round_on_a_busy_account_reads_a_few_pages_then_the_waited_action_itself(
    sandbox, adapter
):
    sandbox.state.action_seconds = 5
    provider_api = adapter(DIGITALOCEAN)
    started = provider_api.start_snapshot(*create_args(DIGITALOCEAN))
    other_actions(sandbox, 2000)  # ten pages deep
    sandbox.clear_requests()
    assert provider_api.progress([started])[started] is None  # still running
    paths = [r["path"] for r in sandbox.requests(DIGITALOCEAN)]
    # not the 11 pages back to it
    assert paths == ["/v2/actions", f"/v2/actions/{started.action_id}"]


def test_many_waited_actions_deep_in_a_busy_account_are_read_with_a_bounded_number_of_pages(
    sandbox, adapter
):
    sandbox.state.action_seconds = 5
    provider_api = adapter(DIGITALOCEAN)
    started = [
        provider_api.start_snapshot(server, f"s-{server}", {}) for server in ("101", "102", "103")
    ]
    other_actions(sandbox, 2000)
    sandbox.clear_requests()
    assert set(provider_api.progress(started).values()) == {None}
    listing = [r for r in sandbox.requests(DIGITALOCEAN) if r["path"] == "/v2/actions"]
    assert len(listing) <= digitalocean.POLL_PAGES
    assert len(sandbox.requests(DIGITALOCEAN)) <= digitalocean.POLL_PAGES + 3


def test_an_oldest_first_action_listing_is_not_taken_for_newest_first(sandbox, adapter, clock):
    """A lost reply is recovered by looking for a snapshot action newer than the newest one
    known before the start. From an oldest-first listing read as newest first, "the newest
    known" is an old one, and a manual snapshot made since would be taken for ours."""
    sandbox.state.actions_oldest_first = True
    other_actions(sandbox, 250)  # two pages, all before the window
    clock.advance(hours=3)
    # on page 2
    sandbox.state.start_snapshot(
        sandbox.state.accounts["do-a"], sandbox.state.servers[101], "manual"
    )
    time.sleep(sandbox.state.action_seconds + 0.05)
    manual = max(a.id for a in sandbox.state.actions.values() if a.command == "snapshot")
    provider_api = adapter(DIGITALOCEAN)
    with contextlib.suppress(ProviderError):  # the listing cannot say which droplets are busy
        provider_api.busy_servers(clock() - timedelta(hours=1))
    # it never arrived
    sandbox.inject("drop", service=DIGITALOCEAN, method="POST", path="/droplets/101/actions")
    started = provider_api.start_snapshot(*create_args(DIGITALOCEAN))
    assert started.action_id != str(manual)
    ours = [
        a
        for a in sandbox.state.actions.values()
        if a.command == "snapshot" and a.snapshot.name == started.name
    ]
    assert [str(a.id) for a in ours] == [started.action_id]


def test_an_oldest_first_action_listing_says_busy_servers_are_unknown_and_polls_read_each_action(
    sandbox, adapter, clock
):
    sandbox.state.actions_oldest_first = True
    other_actions(sandbox, 250)
    provider_api = adapter(DIGITALOCEAN)
    started = provider_api.start_snapshot(*create_args(DIGITALOCEAN))
    with pytest.raises(ProviderError, match="not listed newest first"):
        provider_api.busy_servers(clock() - timedelta(hours=1))
    time.sleep(sandbox.state.action_seconds + 0.05)
    sandbox.clear_requests()
    assert isinstance(provider_api.progress([started])[started], CloudSnapshot)
    assert f"/v2/actions/{started.action_id}" in [r["path"] for r in sandbox.requests(DIGITALOCEAN)]


def test_digitalocean_busy_servers_deeper_than_a_few_pages_are_unknown(sandbox, adapter, clock):
    other_actions(sandbox, 2000)
    sandbox.clear_requests()
    with pytest.raises(ProviderError, match="busy is unknown"):
        adapter(DIGITALOCEAN).busy_servers(clock() - timedelta(hours=1))
    assert len(sandbox.requests(DIGITALOCEAN)) == digitalocean.BUSY_PAGES


# -- item 8: any action in progress makes a server busy --------------------------------------


@BOTH
def test_busy_servers_names_every_server_with_an_action_in_progress_and_its_kind(
    sandbox, adapter, do, hz, provider, clock
):
    sandbox.state.action_seconds = 2
    if provider == DIGITALOCEAN:
        do.droplet_actions.post(droplet_id=101, body={"type": "snapshot", "name": "manual"})
        do.droplet_actions.post(droplet_id=102, body={"type": "resize", "size": "s-2vcpu-4gb"})
        expected = {"101": "snapshot", "102": "resize"}
    else:
        from hcloud.servers import Server

        hz.servers.create_image(Server(id=301), description="manual", type="snapshot")
        hz.servers.power_off(Server(id=302))
        expected = {"301": "snapshot", "302": "stop_server"}
    sandbox.clear_requests()
    provider_api = adapter(provider)
    assert provider_api.busy_servers(clock() - timedelta(hours=1)) == expected
    assert len(sandbox.requests(provider)) == 1


# -- item 12b: Hetzner's action read by ids is paginated --------------------------------------


def test_hetzner_confirms_more_than_a_page_of_snapshots_in_one_round(sandbox, adapter):
    for n in range(60):
        sandbox.state.add_server("hz-a", f"many-{n}", id=6000 + n)
    provider_api = adapter(HETZNER)
    started = [provider_api.start_snapshot(str(6000 + n), f"many-{n}-snap", {}) for n in range(60)]
    time.sleep(sandbox.state.action_seconds + 0.05)
    sandbox.clear_requests()
    done = provider_api.progress(started)
    assert all(isinstance(result, CloudSnapshot) for result in done.values()), done
    # 50 ids, then 10
    assert [r["path"] for r in sandbox.requests(HETZNER)] == ["/v1/actions", "/v1/actions"]


def test_hetzner_reads_an_action_missing_from_the_answer_by_itself_and_then_its_image(
    sandbox, adapter
):
    provider_api = adapter(HETZNER)
    made = create(provider_api, *create_args(HETZNER))
    image = replace_creating(made)
    gone = StartedSnapshot("301", made.name, "987654", image, {})  # an action Hetzner no longer has
    vanished = StartedSnapshot("301", "vanished", "987655", replace_creating(made, id="424242"), {})
    sandbox.clear_requests()
    done = provider_api.progress([gone, vanished])
    assert (
        isinstance(done[gone], CloudSnapshot)
        and done[gone].id == made.id
        and not done[gone].creating
    )
    # not waited for until the timeout
    assert isinstance(done[vanished], ProviderError) and done[vanished].status == 404
    paths = [r["path"] for r in sandbox.requests(HETZNER)]
    assert "/v1/actions/987654" in paths and "/v1/actions/987655" in paths


def replace_creating(snapshot: CloudSnapshot, **changes: str) -> CloudSnapshot:
    return replace(snapshot, creating=True, **changes)
