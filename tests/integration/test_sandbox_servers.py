"""Servers made from snapshots in the sandbox (issue 22, item 5), through pydo and hcloud.

A restore drill creates a server from a snapshot, waits while it boots, lists it by its drill
tag/label, reads it and deletes it; these tests hold the fake clouds to what the real ones do
at each step, refusals and faults included, and check every new reply against the official
API descriptions.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import hcloud
import httpx
import pytest
import requests
from azure.core.exceptions import HttpResponseError
from hcloud.actions import ActionFailedException
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.networks import Network
from hcloud.server_types import ServerType
from hcloud.servers import Server, ServerCreatePublicNetwork

from snapshot_policy.sandbox import Sandbox, State
from snapshot_policy.sandbox.server import read_state
from tests.integration.conftest import DO_TOKEN, HZ_TOKEN

DRILL_TAG = "snapshot-policy-drill"
DRILL_LABELS = {"managed-by": "snapshot-policy", "snapshot-policy/drill": "true"}


def status_of(sandbox, server_id: int) -> str:
    """A server's status in the state, its actions finished as a request would see them."""
    with sandbox.state.lock:
        sandbox.state.advance()
        return sandbox.state.servers[server_id].status


def wait_until(check, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def do_snapshot(sandbox):
    """A snapshot of web-1 (nyc3, s-1vcpu-1gb: 25 GB disk)."""
    return sandbox.state.add_snapshot("do-a", "web-1-20250101000000", server_id=101)


@pytest.fixture
def hz_snapshot(sandbox):
    """A snapshot of app-1 (fsn1, cpx22: x86, 80 GB disk)."""
    return sandbox.state.add_snapshot("hz-a", "app-1 nightly", server_id=301)


def create_droplet(do, snapshot, **body):
    body = {"name": "drill-web-1", "size": "s-1vcpu-1gb", "image": snapshot.id, **body}
    return do.droplets.create(body=body)


def refused(call) -> tuple[int, dict]:
    """Run a pydo call that must be refused; its status and error body."""
    with pytest.raises(HttpResponseError) as caught:
        call()
    return caught.value.status_code, caught.value.response.json()


def hz_refused(call) -> hcloud.APIException:
    with pytest.raises(hcloud.APIException) as caught:
        call()
    return caught.value


# -- DigitalOcean ----------------------------------------------------------------------------


def test_a_droplet_made_from_a_snapshot_boots_then_is_listed_read_and_deleted(
    sandbox, make_do, do_snapshot
):
    sandbox.state.boot_seconds = 0.3
    do = make_do(retry_total=0)
    made = create_droplet(do, do_snapshot, region="nyc3", tags=[DRILL_TAG])
    droplet, (link,) = made["droplet"], made["links"]["actions"]
    assert (droplet["status"], droplet["locked"], droplet["image"]["id"]) == (
        "new",
        True,
        do_snapshot.id,
    )
    assert (droplet["image"]["type"], droplet["size_slug"], droplet["region"]["slug"]) == (
        "snapshot",
        "s-1vcpu-1gb",
        "nyc3",
    )
    assert link["rel"] == "create" and link["href"].endswith(f"/v2/actions/{link['id']}")
    action = do.actions.get(link["id"])["action"]
    assert (action["type"], action["status"], action["resource_id"]) == (
        "create",
        "in-progress",
        droplet["id"],
    )
    listed = do.droplets.list(tag_name=DRILL_TAG)["droplets"]
    assert [d["id"] for d in listed] == [droplet["id"]]
    wait_until(lambda: do.droplets.get(droplet["id"])["droplet"]["status"] == "active")
    assert do.actions.get(link["id"])["action"]["status"] == "completed"
    assert do.droplets.destroy(droplet["id"]) is None
    assert do.droplets.get(droplet["id"])["id"] == "not_found"
    assert do.droplets.destroy(droplet["id"])["id"] == "not_found"  # 404: pydo returns it
    assert do.droplets.list(tag_name=DRILL_TAG)["droplets"] == []
    assert do.snapshots.get(do_snapshot.id)["snapshot"]["name"] == do_snapshot.name  # kept
    assert 101 in sandbox.state.servers  # nothing else touched


def test_droplet_networks_follow_public_networking_and_ipv6(sandbox, do, do_snapshot):
    private = create_droplet(do, do_snapshot, public_networking=False)["droplet"]["networks"]
    assert [n["type"] for n in private["v4"]] == ["private"] and private["v6"] == []
    both = create_droplet(do, do_snapshot, name="drill-2", ipv6=True)["droplet"]
    assert [n["type"] for n in both["networks"]["v4"]] == ["public", "private"]
    assert [n["type"] for n in both["networks"]["v6"]] == ["public"]
    assert "ipv6" in both["features"]
    status, body = refused(
        lambda: create_droplet(do, do_snapshot, name="x", public_networking=False, ipv6=True)
    )
    assert (status, body["id"]) == (422, "unprocessable_entity")
    assert "public_networking" in body["message"]


def test_droplet_creates_are_refused_as_digitalocean_refuses_them(sandbox, make_do, do_snapshot):
    sandbox.state.add_server("do-a", "small-1", id=150, region="ams3", machine_type="s-2vcpu-4gb")
    big = sandbox.state.add_snapshot("do-a", "small-1-snap", server_id=150)
    do = make_do(retry_total=0)
    cases = {
        "invalid size": dict(size="s-99"),
        "is not available in nyc3": dict(size="m-2vcpu-16gb"),  # unavailable anywhere
        "s-1vcpu-512mb-10gb is not available in nyc3": dict(size="s-1vcpu-512mb-10gb"),
        "not available in fra1; it is in nyc3": dict(region="fra1"),
        "invalid region": dict(region="mars1"),
        "invalid image": dict(image=999),
        "Name is invalid": dict(name="not a hostname!"),
        "one Droplet a request": dict(names=["a", "b"]),
        "tags must be": dict(tags=["no spaces allowed"]),
    }
    for words, body in cases.items():
        status, answer = refused(lambda body=body: create_droplet(do, do_snapshot, **body))
        assert status == 422 and words in answer["message"], (body, answer)
    status, answer = refused(
        lambda: create_droplet(do, big, size="s-1vcpu-2gb", region="ams3")  # 50 GB < 80 GB
    )
    assert status == 422 and "needs at least 80 GB" in answer["message"]
    assert create_droplet(do, big, size="s-2vcpu-4gb")["droplet"]["region"]["slug"] == "ams3"
    assert sorted(s.name for s in sandbox.state.servers.values() if s.account == "do-a") == [
        "db-1",
        "drill-web-1",
        "small-1",
        "web-1",
        "web-2",
    ]


def test_droplet_names_may_repeat_as_on_digitalocean(do, do_snapshot):
    first = create_droplet(do, do_snapshot)["droplet"]["id"]
    second = create_droplet(do, do_snapshot)["droplet"]["id"]
    assert first != second
    assert len(do.droplets.list(name="drill-web-1")["droplets"]) == 2


def test_sizes_are_listed_page_by_page_with_disk_price_regions(do):
    first = do.sizes.list(per_page=3)
    assert first["meta"]["total"] == 8 and len(first["sizes"]) == 3
    assert "next" in first["links"]["pages"]
    sizes = {s["slug"]: s for s in do.sizes.list(per_page=200)["sizes"]}
    assert sizes["s-1vcpu-1gb"]["disk"] == 25 and sizes["s-1vcpu-1gb"]["price_hourly"] > 0
    assert "nyc3" not in sizes["s-1vcpu-512mb-10gb"]["regions"]
    assert (sizes["m-2vcpu-16gb"]["available"], sizes["m-2vcpu-16gb"]["regions"]) == (False, [])


def test_a_snapshot_needs_the_disk_of_the_droplet_it_was_made_of(sandbox, do):
    sandbox.state.add_server("do-a", "big-1", id=160, machine_type="s-4vcpu-8gb")
    action = do.droplet_actions.post(160, {"type": "snapshot", "name": "big-1-now"})["action"]
    wait_until(lambda: do.actions.get(action["id"])["action"]["status"] == "completed")
    (listed,) = do.droplets.list_snapshots(160)["snapshots"]
    assert (listed["min_disk_size"], listed["regions"]) == (160, ["nyc3"])
    droplet = do.droplets.get(160)["droplet"]
    assert (droplet["size_slug"], droplet["disk"], droplet["memory"]) == ("s-4vcpu-8gb", 160, 8192)


# -- Hetzner ---------------------------------------------------------------------------------


def test_a_server_made_from_a_snapshot_boots_then_is_listed_read_and_deleted(
    sandbox, hz, hz_snapshot
):
    sandbox.state.boot_seconds = 0.3
    made = hz.servers.create(
        "drill-app-1",
        server_type=ServerType(name="cpx22"),
        image=Image(id=hz_snapshot.id),
        location=Location(name="nbg1"),
        labels=DRILL_LABELS,
    )
    assert (made.server.status, made.server.image.id, made.server.location.name) == (
        "initializing",
        hz_snapshot.id,
        "nbg1",
    )
    assert (made.action.command, made.action.status) == ("create_server", "running")
    assert [a.command for a in made.next_actions] == ["start_server"]
    assert made.root_password  # no SSH key given
    listed = hz.servers.get_all(label_selector="snapshot-policy/drill")
    assert [s.id for s in listed] == [made.server.id]
    assert hz.servers.get_all(status=["initializing"])[0].id == made.server.id
    made.action.wait_until_finished()
    for action in made.next_actions:
        action.wait_until_finished()
    server = hz.servers.get_by_id(made.server.id)
    assert (server.status, server.server_type.name, server.primary_disk_size) == (
        "running",
        "cpx22",
        80,
    )
    assert server.public_net.ipv4.ip and server.public_net.ipv6.ip.endswith("/64")
    assert [s.id for s in hz.servers.get_all(status=["running"])] == [301, 302, 303, server.id]
    deleted = hz.servers.delete(server)
    assert (deleted.command, deleted.status) == ("delete_server", "success")
    assert hz_refused(lambda: hz.servers.get_by_id(server.id)).code == "not_found"
    assert hz_refused(lambda: hz.servers.delete(server)).code == "not_found"
    assert hz.images.get_by_id(hz_snapshot.id).description == "app-1 nightly"  # kept
    assert {301, 302, 303} <= set(sandbox.state.servers)


def test_a_server_without_public_net_needs_a_network_unless_it_stays_off(sandbox, hz, hz_snapshot):
    private = ServerCreatePublicNetwork(enable_ipv4=False, enable_ipv6=False)
    args = dict(server_type=ServerType(name="cpx22"), image=Image(id=hz_snapshot.id))
    refusal = hz_refused(lambda: hz.servers.create("drill-a", public_net=private, **args))
    assert refusal.code == "invalid_input" and "needs a network" in refusal.message
    assert refusal.details["fields"][0]["name"] == "public_net"
    made = hz.servers.create(
        "drill-a", public_net=private, networks=[Network(id=4711)], ssh_keys=[], **args
    )
    assert made.server.public_net.ipv4 is None and made.server.public_net.ipv6 is None
    assert made.server.private_net[0].ip.startswith("10.")
    assert made.server.private_net[0].network.id == 4711
    unstarted = hz.servers.create("drill-b", public_net=private, start_after_create=False, **args)
    assert unstarted.next_actions == []
    unstarted.action.wait_until_finished()
    assert hz.servers.get_by_id(unstarted.server.id).status == "off"


def test_server_creates_are_refused_as_hetzner_refuses_them(sandbox, hz, hz_snapshot):
    sandbox.state.add_server("hz-a", "arm-1", id=350, machine_type="cax21")
    arm = sandbox.state.add_snapshot("hz-a", "arm-1 nightly", server_id=350)
    creating = sandbox.state.add_snapshot("hz-a", "stuck", server_id=301, status="creating")

    def create(name="drill-x", kind="cpx22", image=hz_snapshot.id, location=None):
        where = Location(name=location) if location else None
        return hz.servers.create(
            name, server_type=ServerType(name=kind), image=Image(id=image), location=where
        )

    cases = [
        (dict(name="app-1"), 409, "uniqueness_error", None),
        (dict(kind="cx22"), 412, "resource_unavailable", None),  # deprecated
        (dict(kind="cx23", location="hel1"), 412, "resource_unavailable", None),  # sold out
        (dict(kind="cx23", location="fsn1"), 422, "invalid_input", "server_type"),  # 40 < 80 GB
        (dict(kind="cax21"), 422, "invalid_input", "image"),  # x86 image, arm type
        (dict(kind="cpx22", image=arm.id), 422, "invalid_input", "image"),  # and the other way
        (dict(kind="nope"), 422, "invalid_input", "server_type"),
        (dict(image=999), 422, "invalid_input", "image"),
        (dict(image=creating.id), 422, "invalid_input", "image"),
        (dict(location="mars1"), 422, "invalid_input", "location"),
        (dict(name="no_underscores"), 422, "invalid_input", "name"),
    ]
    for kwargs, status, code, field in cases:
        sandbox.clear_requests()
        refusal = hz_refused(lambda kwargs=kwargs: create(**kwargs))
        assert refusal.code == code, (kwargs, refusal)
        assert sandbox.requests("hetzner")[-1]["status"] == status
        if field:
            assert refusal.details["fields"][0]["name"] == field, kwargs
    assert create(kind="cax21", image=arm.id).server.server_type.architecture == "arm"
    assert create(name="drill-y", kind="ccx13", location="hel1").server.location.name == "hel1"
    by_ids = hz.servers.create(
        "drill-ids",
        server_type=ServerType(id=2),
        image=Image(id=hz_snapshot.id),
        location=Location(id=3),
    ).server
    assert (by_ids.server_type.name, by_ids.location.name) == ("cpx32", "nbg1")
    assert create(name="drill-z", kind="cpx22", image="ubuntu-24.04").server.image.name == (
        "ubuntu-24.04"
    )


def test_server_types_list_disk_price_locations_architecture_and_deprecation(hz):
    kinds = {k.name: k for k in hz.server_types.get_all()}
    assert set(kinds) == {"cx22", "cx23", "cpx22", "cpx32", "cax11", "cax21", "ccx13"}
    assert (kinds["cax11"].architecture, kinds["cpx22"].disk) == ("arm", 80)
    assert kinds["cx22"].locations[0].deprecation.unavailable_after is not None
    assert kinds["cx22"].locations[0].available is False
    cx23 = {entry.location.name: entry.available for entry in kinds["cx23"].locations}
    assert cx23 == {"fsn1": True, "hel1": False, "nbg1": True}
    assert {p["location"] for p in kinds["cpx22"].prices} == {"fsn1", "hel1", "nbg1"}
    assert float(kinds["cpx22"].prices[0]["price_hourly"]["net"]) > 0
    assert hz.server_types.get_by_name("cx23").id == kinds["cx23"].id
    assert hz.server_types.get_by_id(kinds["cpx32"].id).name == "cpx32"
    page = hz.server_types.get_list(page=2, per_page=3)
    assert len(page.server_types) == 3 and page.meta.pagination.next_page == 3


def test_images_say_the_disk_and_architecture_a_server_made_of_them_needs(sandbox, hz):
    sandbox.state.add_server("hz-a", "arm-2", id=351, machine_type="cax11")
    made = hz.servers.create_image(Server(id=351), description="arm-2 now")
    assert (made.image.disk_size, made.image.architecture) == (40, "arm")
    made.action.wait_until_finished()
    image = hz.images.get_by_id(made.image.id)
    assert (image.disk_size, image.architecture) == (40, "arm")
    server = hz.servers.get_by_id(351)
    assert (server.server_type.name, server.primary_disk_size) == ("cax11", 40)


def test_a_protected_server_is_not_deleted(sandbox, hz):
    sandbox.state.servers[303].protected = True
    assert hz_refused(lambda: hz.servers.delete(Server(id=303))).code == "protected"
    assert 303 in sandbox.state.servers


# -- time, faults and limits ------------------------------------------------------------------


def test_boot_takes_the_accounts_boot_seconds(sandbox, do, hz, do_snapshot, hz_snapshot):
    sandbox.state.boot_seconds = 0.05
    sandbox.state.accounts["hz-a"].boot_seconds = 0.6
    started = time.monotonic()
    droplet = create_droplet(do, do_snapshot)["droplet"]
    server = hz.servers.create(
        "drill-app-1", server_type=ServerType(name="cpx22"), image=Image(id=hz_snapshot.id)
    ).server
    wait_until(lambda: do.droplets.get(droplet["id"])["droplet"]["status"] == "active")
    assert hz.servers.get_by_id(server.id).status == "initializing"
    wait_until(lambda: hz.servers.get_by_id(server.id).status == "running")
    assert time.monotonic() - started >= 0.6


def test_boot_fail_ends_the_create_action_in_error_and_leaves_the_server_off(
    sandbox, do, hz, do_snapshot, hz_snapshot
):
    sandbox.inject("boot_fail", service="digitalocean", name="^drill-")
    sandbox.inject("boot_fail", service="hetzner")
    bad = create_droplet(do, do_snapshot)
    good = create_droplet(do, do_snapshot, name="other")  # the fault fired once
    for made, status in ((bad, "errored"), (good, "completed")):
        action_id = made["links"]["actions"][0]["id"]
        wait_until(lambda a=action_id: do.actions.get(a)["action"]["status"] != "in-progress")
        assert do.actions.get(action_id)["action"]["status"] == status
    assert do.droplets.get(bad["droplet"]["id"])["droplet"]["status"] == "off"
    assert do.droplets.get(good["droplet"]["id"])["droplet"]["status"] == "active"
    made = hz.servers.create(
        "drill-app-1", server_type=ServerType(name="cpx22"), image=Image(id=hz_snapshot.id)
    )
    with pytest.raises(ActionFailedException):
        made.action.wait_until_finished()
    assert hz.servers.get_by_id(made.server.id).status == "off"
    assert hz.servers.delete(made.server).status == "success"  # still there to delete


def test_slow_boot_holds_matching_servers_longer(sandbox, do, do_snapshot):
    sandbox.state.boot_seconds = 0.05
    sandbox.inject("slow_boot", service="digitalocean", name="slow", seconds=0.8)
    slow = create_droplet(do, do_snapshot, name="drill-slow")["droplet"]["id"]
    quick = create_droplet(do, do_snapshot, name="drill-quick")["droplet"]["id"]
    started = time.monotonic()
    wait_until(lambda: do.droplets.get(quick)["droplet"]["status"] == "active")
    assert do.droplets.get(slow)["droplet"]["status"] == "new"
    wait_until(lambda: do.droplets.get(slow)["droplet"]["status"] == "active")
    assert time.monotonic() - started >= 0.5


def test_boot_faults_are_set_through_the_control_api(sandbox, do, do_snapshot):
    url = f"{sandbox.url}/_sandbox/faults"
    answer = httpx.post(url, json={"kind": "boot_fail", "service": "digitalocean"})
    assert answer.status_code == 201 and answer.json()["kind"] == "boot_fail"
    made = create_droplet(do, do_snapshot)
    action_id = made["links"]["actions"][0]["id"]
    wait_until(lambda: do.actions.get(action_id)["action"]["status"] == "errored")
    assert httpx.get(url).json()[0]["fired"] == 1


def test_a_lost_reply_to_a_create_still_makes_the_server(sandbox, make_do, hz, do_snapshot):
    sandbox.inject("lose_reply", service="digitalocean", method="POST", path=r"^/v2/droplets$")
    sandbox.inject("lose_reply", service="hetzner", method="POST", path=r"^/v1/servers$")
    do = make_do(retry_total=0)
    with pytest.raises(Exception):  # noqa: B017 - the connection closes: any transport error
        create_droplet(do, do_snapshot, tags=[DRILL_TAG])
    assert [d["name"] for d in do.droplets.list(tag_name=DRILL_TAG)["droplets"]] == ["drill-web-1"]
    snapshot = sandbox.state.add_snapshot("hz-a", "app-1 nightly", server_id=301)
    with pytest.raises(requests.ConnectionError):
        hz.servers.create(
            "drill-app-1", server_type=ServerType(name="cpx22"), image=Image(id=snapshot.id)
        )
    assert [s.name for s in hz.servers.get_all(name="drill-app-1")] == ["drill-app-1"]
    assert [r["fault"] for r in sandbox.requests() if r["method"] == "POST"] == [
        "lose_reply",
        "lose_reply",
    ]


def test_a_snapshot_limit_refuses_one_more_snapshot(sandbox, make_do, hz):
    sandbox.state.accounts["hz-a"].snapshot_limit = 1
    sandbox.state.accounts["do-a"].snapshot_limit = 0
    sandbox.state.add_snapshot("hz-a", "a backup", server_id=301, type="backup")  # not counted
    first = hz.servers.create_image(Server(id=301), description="one")
    first.action.wait_until_finished()
    refusal = hz_refused(lambda: hz.servers.create_image(Server(id=302), description="two"))
    assert (refusal.code, refusal.details) == (
        "resource_limit_exceeded",
        {"limits": [{"name": "snapshot_limit"}]},
    )
    assert sandbox.requests("hetzner")[-1]["status"] == 403
    hz.images.delete(first.image)
    hz.servers.create_image(Server(id=302), description="two").action.wait_until_finished()
    status, body = refused(
        lambda: make_do(retry_total=0).droplet_actions.post(101, {"type": "snapshot"})
    )
    assert status == 422 and "snapshot limit" in body["message"]


def test_new_endpoints_are_charged_and_carry_the_rate_limit_headers(sandbox, do_snapshot):
    do_auth = {"Authorization": f"Bearer {DO_TOKEN}"}
    hz_auth = {"Authorization": f"Bearer {HZ_TOKEN}"}
    replies = [
        httpx.get(f"{sandbox.url}/v2/sizes", headers=do_auth),
        httpx.post(
            f"{sandbox.url}/v2/droplets",
            headers=do_auth,
            json={"name": "d", "size": "s-1vcpu-1gb", "image": do_snapshot.id},
        ),
    ]
    assert [r.status_code for r in replies] == [200, 202]
    remaining = [int(r.headers["ratelimit-remaining"]) for r in replies]
    assert remaining[1] == remaining[0] - 1
    hz_replies = [
        httpx.get(f"{sandbox.url}/v1/server_types", headers=hz_auth),
        httpx.delete(f"{sandbox.url}/v1/servers/302", headers=hz_auth),
    ]
    assert [r.status_code for r in hz_replies] == [200, 200]
    remaining = [int(r.headers["RateLimit-Remaining"]) for r in hz_replies]
    assert remaining[1] == remaining[0] - 1
    sandbox.state.accounts["do-a"].burst_limit = 1  # counted from now on: one a minute
    assert httpx.get(f"{sandbox.url}/v2/sizes", headers=do_auth).status_code == 200
    limited = httpx.delete(f"{sandbox.url}/v2/droplets/102", headers=do_auth)
    assert limited.status_code == 429 and "retry-after" in limited.headers
    assert 102 in sandbox.state.servers


# -- the state file --------------------------------------------------------------------------


def test_the_state_round_trips_servers_with_their_status_and_settings(sandbox, do, hz, tmp_path):
    sandbox.state.accounts["hz-a"].snapshot_limit = 40
    sandbox.state.accounts["do-a"].boot_seconds = 30
    snapshot = sandbox.state.add_snapshot("hz-a", "app-1 nightly", server_id=301)
    sandbox.inject("boot_fail", service="hetzner", name="broken")
    made = hz.servers.create(
        "drill-broken",
        server_type=ServerType(name="cpx32"),
        image=Image(id=snapshot.id),
        public_net=ServerCreatePublicNetwork(enable_ipv4=False, enable_ipv6=True),
        networks=[Network(id=7)],
    )
    wait_until(lambda: hz.servers.get_by_id(made.server.id).status == "off")
    do_snapshot = sandbox.state.add_snapshot("do-a", "web-1-now", server_id=101)
    booting = create_droplet(do, do_snapshot, ipv6=True)["droplet"]["id"]
    dumped = sandbox.dump_state()
    servers = {s["name"]: s for s in dumped["servers"]}
    assert servers["drill-broken"] == {
        "account": "hz-a",
        "id": made.server.id,
        "name": "drill-broken",
        "labels": {},
        "ipv6": servers["drill-broken"]["ipv6"],
        "region": "fsn1",
        "created": "2025-01-01T00:00:00Z",
        "machine_type": "cpx32",
        "status": "off",
        "image_id": snapshot.id,
        "public_ipv4": False,
        "networks": [7],
    }
    assert servers["drill-web-1"]["status"] == "starting"
    accounts = {a["name"]: a for a in dumped["accounts"]}
    assert (accounts["hz-a"]["snapshot_limit"], accounts["do-a"]["boot_seconds"]) == (40, 30)
    path = tmp_path / "state.json"
    path.write_text(json.dumps(dumped))
    assert State.from_dict(read_state(str(path))).to_dict() == dumped
    again = json.loads(path.read_text())
    next(a for a in again["accounts"] if a["name"] == "do-a")["boot_seconds"] = 0.05
    with Sandbox(again, action_seconds=0.05) as loaded:
        server = loaded.state.servers[booting]
        assert server.status == "starting"  # a starting server boots again from the load
        wait_until(lambda: status_of(loaded, booting) == "running")
        assert loaded.state.servers[made.server.id].status == "off"


def test_a_state_file_with_a_bad_server_status_is_refused(tmp_path):
    path = tmp_path / "state.json"
    state = {
        "accounts": [{"name": "a", "provider": "hetzner", "tokens": ["t"]}],
        "servers": [{"account": "a", "name": "x", "status": "exploded"}],
    }
    path.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="status must be one of"):
        read_state(str(path))
    state["servers"][0] = {"account": "a", "name": "x"}
    state["accounts"][0]["snapshot_limit"] = -1
    path.write_text(json.dumps(state))
    with pytest.raises(ValueError, match="snapshot_limit"):
        read_state(str(path))


# -- the replies against the official descriptions -------------------------------------------


def find_specs() -> Path | None:
    """../shared/api-specs beside the repository (or beside its worktree folder)."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "api-specs").is_dir():
            return parent / "shared" / "api-specs"
    return None


@pytest.fixture(scope="module")
def openapi() -> dict:
    """One validator per cloud, as test_sandbox_conformance loads them (CI=true: required)."""
    import os

    import openapi_core
    import yaml
    from jsonschema_path import SchemaPath

    specs = find_specs()
    if specs is None:
        reason = "the official API descriptions are not beside the repository"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{reason}; under CI=true they are required", pytrace=False)
        pytest.skip(reason)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with open(specs / "digitalocean-v2.bundled.yaml", encoding="utf-8") as handle:
        do_spec = yaml.load(handle, Loader=loader)
    with open(specs / "hetzner-cloud-v1.json", encoding="utf-8") as handle:
        hz_spec = json.load(handle)
    for operation in (op for item in hz_spec["paths"].values() for op in item.values()):
        if isinstance(operation, dict) and "responses" in operation:
            responses = operation["responses"]
            for key in [k for k in responses if k.endswith("xx")]:
                responses[key.upper()] = responses.pop(key)  # "4xx" is spelled "4XX"
    config = openapi_core.Config(spec_validator_cls=None)
    return {
        "digitalocean": openapi_core.OpenAPI(SchemaPath.from_dict(do_spec), config=config),
        "hetzner": openapi_core.OpenAPI(SchemaPath.from_dict(hz_spec), config=config),
    }


def test_every_server_reply_matches_the_openapi_description(sandbox, openapi):
    from tests.integration.test_sandbox_conformance import Recorder, validate

    sandbox.state.boot_seconds = 0.3
    do_snap = sandbox.state.add_snapshot("do-a", "web-1-snap", server_id=101)
    hz_snap = sandbox.state.add_snapshot("hz-a", "app-1 nightly", server_id=301)
    call = Recorder(sandbox)
    body = {"name": "drill-1", "size": "s-1vcpu-1gb", "image": do_snap.id, "tags": [DRILL_TAG]}
    droplet = call("digitalocean", "POST", "/v2/droplets", 202, json=body).json()["droplet"]
    call("digitalocean", "POST", "/v2/droplets", 202, json={**body, "public_networking": False})
    call("digitalocean", "POST", "/v2/droplets", 202, json={**body, "ipv6": True})
    call("digitalocean", "POST", "/v2/droplets", 422, json={**body, "size": "s-99"})
    call("digitalocean", "GET", "/v2/droplets", 200, params={"tag_name": DRILL_TAG})
    call("digitalocean", "GET", f"/v2/droplets/{droplet['id']}", 200)
    call("digitalocean", "GET", "/v2/sizes", 200, params={"per_page": 3, "page": 2})
    call("digitalocean", "GET", "/v2/actions", 200)
    call("digitalocean", "DELETE", f"/v2/droplets/{droplet['id']}", 204)
    call("digitalocean", "DELETE", f"/v2/droplets/{droplet['id']}", 404)
    server_body = {
        "name": "drill-1",
        "server_type": "cpx22",
        "image": str(hz_snap.id),
        "labels": DRILL_LABELS,
    }
    made = call("hetzner", "POST", "/v1/servers", 201, json=server_body).json()
    call(
        "hetzner",
        "POST",
        "/v1/servers",
        201,
        json={
            **server_body,
            "name": "drill-2",
            "public_net": {"enable_ipv4": False, "enable_ipv6": False},
            "networks": [5],
            "ssh_keys": ["mine"],
        },
    )
    call("hetzner", "POST", "/v1/servers", 409, json=server_body)
    call("hetzner", "POST", "/v1/servers", 412, json={**server_body, "server_type": "cx22"})
    call("hetzner", "POST", "/v1/servers", 422, json={**server_body, "server_type": "cax11"})
    call("hetzner", "GET", "/v1/servers", 200, params={"label_selector": "snapshot-policy/drill"})
    call("hetzner", "GET", f"/v1/servers/{made['server']['id']}", 200)
    call("hetzner", "GET", f"/v1/actions/{made['action']['id']}", 200)
    call("hetzner", "GET", "/v1/server_types", 200)
    call("hetzner", "GET", "/v1/server_types", 200, params={"name": "cx23"})
    call("hetzner", "GET", "/v1/server_types/1", 200)
    call("hetzner", "GET", "/v1/server_types/999", 404)
    wait_until(lambda: status_of(sandbox, made["server"]["id"]) == "running")
    call("hetzner", "GET", f"/v1/servers/{made['server']['id']}", 200)
    call("hetzner", "DELETE", f"/v1/servers/{made['server']['id']}", 200)
    call("hetzner", "DELETE", f"/v1/servers/{made['server']['id']}", 404)
    sandbox.state.accounts["hz-a"].snapshot_limit = 0
    call("hetzner", "POST", "/v1/servers/301/actions/create_image", 403, json={})
    problems = []
    for provider, request, response in call.exchanges:
        try:
            validate(openapi, provider, request, response)
        except Exception as exc:  # collect all, report together
            cause = getattr(exc, "__cause__", None) or exc
            problems.append(f"{request.method} {request.url.path} {response.status_code}: {cause}")
    call.client.close()
    assert not problems, "\n".join(problems)


def test_the_server_validation_is_not_vacuous(sandbox, openapi):
    """A create reply without a field the description requires must fail validation."""
    from tests.integration.test_sandbox_conformance import Recorder, validate

    snapshot = sandbox.state.add_snapshot("hz-a", "app-1 nightly", server_id=301)
    sandbox.inject("patch", service="hetzner", patch={"server": {"primary_disk_size": None}})
    call = Recorder(sandbox)
    body = {"name": "drill-1", "server_type": "cpx22", "image": snapshot.id}
    call("hetzner", "POST", "/v1/servers", 201, json=body)
    ((provider, request, response),) = call.exchanges
    call.client.close()
    with pytest.raises(Exception, match="primary_disk_size"):
        validate(openapi, provider, request, response)


def test_delete_by_tag_destroys_every_droplet_with_the_tag_as_digitalocean_does(sandbox, do):
    """The tool must never send it (DESIGN: only by id); the sandbox does what the cloud would,
    so a tool that did would be seen destroying servers."""
    assert do.droplets.destroy_by_tag(tag_name="web") is None
    assert sorted(s.name for s in sandbox.state.servers.values() if s.account == "do-a") == ["db-1"]
    assert sandbox.requests("digitalocean")[-1]["query"] == {"tag_name": "web"}


def test_a_failed_delete_leaves_the_server(sandbox, make_do, hz, do_snapshot):
    do = make_do(retry_total=0)
    droplet = create_droplet(do, do_snapshot)["droplet"]["id"]
    sandbox.inject("error", service="digitalocean", method="DELETE", path=r"^/v2/droplets/\d+$")
    status, _ = refused(lambda: do.droplets.destroy(droplet))
    assert status == 500 and droplet in sandbox.state.servers
    assert do.droplets.destroy(droplet) is None and droplet not in sandbox.state.servers


def test_snapshots_still_being_made_count_against_the_limit(sandbox, make_do):
    """A DigitalOcean snapshot is listed only once made; the limit counts it from the start."""
    sandbox.state.action_seconds = 5
    sandbox.state.accounts["do-a"].snapshot_limit = 1
    do = make_do(retry_total=0)
    do.droplet_actions.post(101, {"type": "snapshot", "name": "one"})
    status, body = refused(lambda: do.droplet_actions.post(102, {"type": "snapshot"}))
    assert status == 422 and "snapshot limit of your account (1)" in body["message"]


def test_a_seeded_starting_server_boots_for_the_sandboxs_boot_seconds(sandbox):
    state = sandbox.dump_state()
    state["servers"].append({"account": "hz-a", "id": 399, "name": "booting", "status": "starting"})
    started = time.monotonic()
    with Sandbox(state, action_seconds=5, boot_seconds=0.2) as other:
        assert status_of(other, 399) == "starting"
        wait_until(lambda: status_of(other, 399) == "running")
    assert 0.2 <= time.monotonic() - started < 4


def test_a_server_outlives_the_snapshot_it_was_made_from(sandbox, do, hz, openapi):
    """Retention may delete a drill's snapshot while its server runs: the server still reads
    (DigitalOcean names the image `deleted`, Hetzner's image is null), through both SDKs and
    as the descriptions allow."""
    from tests.integration.test_sandbox_conformance import Recorder, validate

    do_snap = sandbox.state.add_snapshot("do-a", "web-1-old", server_id=101)
    hz_snap = sandbox.state.add_snapshot("hz-a", "app-1 old", server_id=301)
    droplet = create_droplet(do, do_snap)["droplet"]["id"]
    server = hz.servers.create(
        "drill-app-1", server_type=ServerType(name="cpx22"), image=Image(id=hz_snap.id)
    ).server.id
    do.snapshots.delete(do_snap.id)
    hz.images.delete(Image(id=hz_snap.id))
    image = do.droplets.get(droplet)["droplet"]["image"]
    assert (image["id"], image["status"]) == (do_snap.id, "deleted")
    assert hz.servers.get_by_id(server).image is None
    call = Recorder(sandbox)
    call("digitalocean", "GET", f"/v2/droplets/{droplet}", 200)
    call("hetzner", "GET", f"/v1/servers/{server}", 200)
    for provider, request, response in call.exchanges:
        validate(openapi, provider, request, response)
    call.client.close()


def test_snapshot_disks_and_architectures_round_trip(sandbox):
    state = sandbox.state
    state.add_server("hz-a", "arm-3", id=360, machine_type="cax21")
    state.add_server("do-a", "big-2", id=170, machine_type="s-4vcpu-8gb")
    arm = state.add_snapshot("hz-a", "arm-3 nightly", server_id=360)
    small = state.add_snapshot("do-a", "big-2 trimmed", server_id=170, min_disk_gb=25)
    state.remove_server(360)  # its snapshot is an orphan now: no server to default from
    dumped = sandbox.dump_state()
    snapshots = {s["id"]: s for s in dumped["snapshots"]}
    assert (snapshots[arm.id]["architecture"], snapshots[small.id]["min_disk_gb"]) == ("arm", 25)
    loaded = State.from_dict(dumped)
    assert (loaded.snapshots[arm.id].architecture, loaded.snapshots[small.id].min_disk_gb) == (
        "arm",
        25,
    )
    assert loaded.to_dict() == dumped


def test_a_server_limit_refuses_one_more_server(sandbox, make_do, hz, do_snapshot, hz_snapshot):
    sandbox.state.accounts["do-a"].server_limit = 4  # web-1, web-2, db-1 and one more
    sandbox.state.accounts["hz-a"].server_limit = 3  # app-1, app-2, db-1: full
    do = make_do(retry_total=0)
    create_droplet(do, do_snapshot)
    status, body = refused(lambda: create_droplet(do, do_snapshot, name="drill-2"))
    assert status == 422 and "droplet limit (4)" in body["message"]
    refusal = hz_refused(
        lambda: hz.servers.create(
            "drill-app-1", server_type=ServerType(name="cpx22"), image=Image(id=hz_snapshot.id)
        )
    )
    assert (refusal.code, refusal.details) == (
        "resource_limit_exceeded",
        {"limits": [{"name": "server_limit"}]},
    )
    dumped = sandbox.dump_state()
    assert [a.get("server_limit") for a in dumped["accounts"]] == [4, None, 3, None]
    assert State.from_dict(dumped).to_dict() == dumped
