"""The sandbox's Hetzner Cloud API, driven through hcloud over HTTP."""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
import requests
from hcloud import APIException
from hcloud.actions import ActionFailedException
from hcloud.images import Image
from hcloud.servers import Server

from tests.integration.conftest import EPOCH, HZ_OTHER_TOKEN, HZ_TOKEN


def ids(items) -> list[int]:
    return [item.id for item in items]


def test_server_get_returns_the_seeded_server(hz):
    server = hz.servers.get_by_id(301)
    assert (server.name, server.status) == ("app-1", "running")
    assert server.labels == {"env": "prod", "role": "app"}
    assert server.location.name == "fsn1"


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("env=prod", [301, 303]),
        ("env==prod", [301, 303]),
        ("env!=prod", [302]),
        ("backup", [303]),
        ("!backup", [301, 302]),
        ("env in (prod,staging)", [301, 302, 303]),
        ("role notin (db)", [301, 302]),
        ("env=prod,role=app", [301]),
    ],
)
def test_server_label_selectors(hz, selector, expected):
    assert ids(hz.servers.get_all(label_selector=selector)) == expected


def test_server_list_filters_by_name(hz):
    assert ids(hz.servers.get_all(name="db-1")) == [303]


def test_malformed_selector_is_invalid_input(hz):
    with pytest.raises(APIException) as caught:
        hz.servers.get_all(label_selector="env in (prod")
    assert caught.value.code == "invalid_input"


def test_image_listing_pages_through_120_images(sandbox, hz):
    for n in range(120):
        sandbox.state.add_snapshot("hz-a", f"img-{n}", server_id=301, labels={"n": str(n)})
    sandbox.clear_requests()
    images = hz.images.get_all(type=["snapshot"])
    assert len(images) == 120 and len(set(ids(images))) == 120
    pages = [r["query"]["page"] for r in sandbox.requests("hetzner")]
    assert pages == ["1", "2", "3"]
    result = hz.images.get_list(type=["snapshot"], page=3, per_page=50)
    assert len(result.images) == 20
    assert result.meta.pagination.next_page is None
    assert result.meta.pagination.last_page == 3 and result.meta.pagination.total_entries == 120


def test_image_listing_pages_follow_every_change_made_between_them(sandbox, hz):
    """The fake keeps each listing's filtered list between pages (issue 13, item 5); any
    change to what it holds — an image added, deleted, retyped or finishing — shows on the
    next page as it would on the real API."""
    for n in range(60):
        sandbox.state.add_snapshot("hz-a", f"img-{n}", server_id=301)
    backup = sandbox.state.add_snapshot("hz-a", "nightly backup", server_id=301, type="backup")

    def listed(**filters) -> tuple[int, list[int]]:
        first = hz.images.get_list(type=["snapshot"], page=1, per_page=50, **filters)
        second = hz.images.get_list(type=["snapshot"], page=2, per_page=50, **filters)
        return first.meta.pagination.total_entries, ids(first.images) + ids(second.images)

    total, before = listed()
    assert total == 60 and backup.id not in before
    hz.images.update(Image(id=backup.id), type="snapshot")  # PUT: a backup made a snapshot
    assert listed() == (61, sorted([*before, backup.id]))
    hz.images.delete(Image(id=before[0]))
    added = sandbox.state.add_snapshot("hz-a", "seeded", server_id=302)
    assert listed() == (61, [*before[1:], backup.id, added.id])
    sandbox.state.snapshots[added.id].type = "backup"  # changed in place, as a test may
    assert listed() == (60, [*before[1:], backup.id])

    sandbox.state.action_seconds = 30
    made = hz.servers.create_image(Server(id=302), description="new").image
    headers = {"Authorization": f"Bearer {HZ_TOKEN}"}

    def available_ids() -> list[int]:  # not through hcloud: 2.27 sends the page size as `status`
        pages = [
            requests.get(
                f"{sandbox.hetzner_endpoint}/images",
                headers=headers,
                params={"type": "snapshot", "status": "available", "per_page": 50, "page": page},
            )
            for page in (1, 2)
        ]
        return [image["id"] for reply in pages for image in reply.json()["images"]]

    assert made.id in listed()[1] and made.id not in available_ids()  # still creating
    later = time.monotonic() + 60
    sandbox.state.monotonic = lambda: later  # the action's time is up
    assert made.id in available_ids()


def test_image_listing_without_type_includes_system_images(hz):
    types = {image.type for image in hz.images.get_all()}
    assert types == {"system"}


def test_image_label_selector_and_sort(sandbox, hz):
    sandbox.state.add_snapshot(
        "hz-a",
        "old",
        server_id=301,
        created=EPOCH - timedelta(days=2),
        labels={"managed-by": "snapshot-policy"},
    )
    sandbox.state.add_snapshot(
        "hz-a",
        "new",
        server_id=301,
        created=EPOCH - timedelta(days=1),
        labels={"managed-by": "snapshot-policy"},
    )
    sandbox.state.add_snapshot("hz-a", "manual", server_id=301)
    managed = hz.images.get_all(
        type=["snapshot"], label_selector="managed-by=snapshot-policy", sort=["created:desc"]
    )
    assert [i.description for i in managed] == ["new", "old"]


def test_create_image_then_wait_makes_it_available(sandbox, hz, clock):
    sandbox.state.action_seconds = 0.2
    response = hz.servers.create_image(
        Server(id=301), description="app-1 nightly", labels={"managed-by": "snapshot-policy"}
    )
    assert response.image.status == "creating"
    assert response.action.command == "create_image" and response.action.status == "running"
    assert hz.servers.get_by_id(301).locked is True
    clock.advance(minutes=1)
    response.action.wait_until_finished()
    assert response.action.status == "success" and response.action.progress == 100
    image = hz.images.get_by_id(response.image.id)
    assert image.status == "available" and image.labels == {"managed-by": "snapshot-policy"}
    assert image.created_from.id == 301 and image.created_from.name == "app-1"
    assert image.created.isoformat() == EPOCH.isoformat()


def test_create_image_on_a_busy_server_is_locked(sandbox, hz):
    sandbox.state.action_seconds = 5
    first = hz.servers.create_image(Server(id=301), description="first")
    with pytest.raises(APIException) as caught:
        hz.servers.create_image(Server(id=301), description="second")
    assert caught.value.code == "locked"
    with pytest.raises(APIException) as deleting:
        hz.images.delete(Image(id=first.image.id))
    assert deleting.value.code == "locked"


def test_invalid_label_value_is_refused(hz):
    with pytest.raises(APIException) as caught:
        hz.servers.create_image(Server(id=301), labels={"created": "2025-01-01T00:00:00Z"})
    assert caught.value.code == "invalid_input"


def test_delete_image(sandbox, hz):
    image = sandbox.state.add_snapshot("hz-a", "bye", server_id=301)
    assert hz.images.delete(Image(id=image.id)) is True
    with pytest.raises(APIException) as caught:
        hz.images.get_by_id(image.id)
    assert caught.value.code == "not_found"


def test_protected_image_cannot_be_deleted_until_unprotected(sandbox, hz):
    image = sandbox.state.add_snapshot("hz-a", "golden", server_id=301, protected=True)
    with pytest.raises(APIException) as caught:
        hz.images.delete(Image(id=image.id))
    assert caught.value.code == "protected"
    action = hz.images.change_protection(Image(id=image.id), delete=False)
    assert action.status == "success" and action.command == "change_protection"
    assert hz.images.get_by_id(image.id).protection == {"delete": False}
    assert hz.images.delete(Image(id=image.id)) is True


def test_update_replaces_the_whole_label_set(sandbox, hz):
    image = sandbox.state.add_snapshot("hz-a", "x", server_id=301, labels={"a": "1", "b": "2"})
    updated = hz.images.update(Image(id=image.id), description="renamed", labels={"c": "3"})
    assert updated.labels == {"c": "3"} and updated.description == "renamed"


def test_failed_create_image_action_leaves_no_image(sandbox, hz):
    sandbox.inject("fail_action", service="hetzner", server_id=302)
    response = hz.servers.create_image(Server(id=302), description="doomed")
    with pytest.raises(ActionFailedException):
        response.action.wait_until_finished()
    assert response.action.error["code"] == "action_failed"
    with pytest.raises(APIException):
        hz.images.get_by_id(response.image.id)
    ok = hz.servers.create_image(Server(id=302), description="fine")
    ok.action.wait_until_finished()
    assert ok.action.status == "success"


def test_bad_token_is_401(make_hz):
    with pytest.raises(APIException) as caught:
        make_hz("nope").servers.get_by_id(301)
    assert caught.value.code == "unauthorized"


def test_another_accounts_server_and_image_are_404(hz, make_hz):
    for call in (lambda: hz.servers.get_by_id(401), lambda: hz.images.get_by_id(9401)):
        with pytest.raises(APIException) as caught:
            call()
        assert caught.value.code == "not_found"
    assert ids(make_hz(HZ_OTHER_TOKEN).images.get_all(type=["snapshot"])) == [9401]


def test_seeded_creating_image_stays_creating(sandbox, hz):
    image = sandbox.state.add_snapshot("hz-a", "mid-flight", server_id=301, status="creating")
    assert hz.images.get_by_id(image.id).status == "creating"
    assert ids(hz.images.get_all(type=["snapshot"])) == [image.id]


def test_server_ipv6_is_served_as_seeded(sandbox, hz):
    assert hz.servers.get_by_id(301).public_net.ipv6 is None
    state = sandbox.dump_state()
    next(s for s in state["servers"] if s["id"] == 301)["ipv6"] = "2001:db8::/64"
    sandbox.load_state(state)
    assert (
        next(s for s in sandbox.dump_state()["servers"] if s["id"] == 301)["ipv6"]
        == "2001:db8::/64"
    )  # round-trips
    ipv6 = hz.servers.get_by_id(301).public_net.ipv6
    assert (ipv6.ip, ipv6.network, ipv6.network_mask) == ("2001:db8::/64", "2001:db8::", "64")
    sandbox.state.servers[301].ipv6 = "2001:db8::1"  # a string, as the OpenAPI description allows
    with pytest.raises(IndexError):  # hcloud 2.27 expects a prefix length after a "/"
        hz.servers.get_by_id(301)


def test_exhausted_budget_answers_429_with_the_documented_headers_only(sandbox, make_hz):
    sandbox.state.accounts["hz-a"].rate_limit = 2
    hz = make_hz()
    hz._client._retry_max_retries = 0
    hz.servers.get_by_id(301)
    hz.servers.get_by_id(301)
    response = requests.get(
        f"{sandbox.hetzner_endpoint}/servers/301", headers={"Authorization": f"Bearer {HZ_TOKEN}"}
    )
    assert response.status_code == 429 and "Retry-After" not in response.headers
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    sent = parsedate_to_datetime(response.headers["Date"]).timestamp()
    # Two requests an hour, both spent: one is back in half an hour, all of them in an hour.
    assert response.headers["RateLimit-Remaining"] == "0"
    assert 3590 <= int(response.headers["RateLimit-Reset"]) - sent <= 3602


def test_get_actions_by_ids_is_paginated_25_a_page_unless_asked_for_up_to_50(sandbox, hz):
    """hcloud-python asks for 25 ids a request and hcloud-go's waiter follows the pages: the
    answer is a page like any listing's."""
    for n in range(60):
        sandbox.state.add_server("hz-a", f"s{n}", id=5000 + n)
    actions = [
        sandbox.state.start_action(
            sandbox.state.accounts["hz-a"], sandbox.state.servers[5000 + n], "stop_server"
        )
        for n in range(60)
    ]
    ids = [a.id for a in actions]
    first = hz.request("GET", "/actions", params={"id": ids})
    assert len(first["actions"]) == 25 and first["meta"]["pagination"]["next_page"] == 2
    assert first["meta"]["pagination"]["total_entries"] == 60
    fifty = hz.request("GET", "/actions", params={"id": ids, "per_page": 100, "page": 2})
    assert [a["id"] for a in fifty["actions"]] == ids[50:] and fifty["meta"]["pagination"][
        "next_page"
    ] is None


def test_get_actions_by_ids_returns_this_projects_known_ones_and_their_progress(
    sandbox, hz, make_hz
):
    sandbox.state.action_seconds = 1  # long enough to see them running, on a slow machine
    first = hz.servers.create_image(Server(id=301), description="a").action
    second = hz.servers.create_image(Server(id=302), description="b").action
    theirs = make_hz(HZ_OTHER_TOKEN).servers.create_image(Server(id=401), description="c").action
    wanted = [second.id, 999_999, theirs.id, first.id, second.id]
    body = hz.request("GET", "/actions", params={"id": wanted})
    assert (
        body["meta"]["pagination"]["total_entries"] == 2
    )  # paginated, as hcloud's clients read it
    assert [(a["id"], a["status"]) for a in body["actions"]] == [
        (first.id, "running"),
        (second.id, "running"),
    ]
    assert body["actions"][0]["resources"][0] == {"id": 301, "type": "server"}
    deadline = time.monotonic() + 5
    while {a["status"] for a in body["actions"]} != {"success"}:
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
        body = hz.request("GET", "/actions", params={"id": [first.id, second.id]})
    assert all(a["finished"] and a["progress"] == 100 for a in body["actions"])


def test_get_actions_without_id_is_the_removed_listing(hz):
    with pytest.raises(APIException) as caught:
        hz.request("GET", "/actions")
    assert caught.value.code == "deprecated_api_endpoint"
    assert "2025-01-30" in caught.value.details["announcement"]
    with pytest.raises(APIException) as caught:
        hz.request("GET", "/actions", params={"id": ["0"]})
    assert caught.value.code == "invalid_input"


def test_server_actions_list_filters_by_status_and_id(sandbox, hz):
    sandbox.state.action_seconds = 0.05
    done = hz.servers.create_image(Server(id=301), description="done")
    done.action.wait_until_finished()
    sandbox.state.action_seconds = 30
    running = hz.servers.create_image(Server(id=302), description="running").action
    protected = sandbox.state.add_snapshot("hz-a", "p", server_id=303)
    hz.images.change_protection(Image(id=protected.id), delete=True)  # an image action: not listed
    assert ids(hz.servers.actions.get_all()) == [done.action.id, running.id]
    assert ids(hz.servers.actions.get_all(status=["running"])) == [running.id]
    assert ids(hz.servers.actions.get_all(status=["success", "error"])) == [done.action.id]
    assert ids(hz.servers.actions.get_all(sort=["id:desc"])) == [running.id, done.action.id]
    [listed] = hz.servers.actions.get_all(status=["success"])
    assert listed.command == "create_image"
    assert listed.resources == [
        {"id": 301, "type": "server"},
        {"id": done.image.id, "type": "image"},
    ]
    body = hz.request(
        "GET", "/servers/actions", params={"id": [running.id, 999_999], "status": "running"}
    )
    assert [a["id"] for a in body["actions"]] == [running.id]
    with pytest.raises(APIException) as caught:
        hz.servers.actions.get_all(status=["finished"])
    assert caught.value.code == "invalid_input"


def test_server_actions_list_pages_through_120_actions(sandbox, hz):
    account = sandbox.state.accounts["hz-a"]
    servers = [sandbox.state.servers[n] for n in (301, 302, 303)]
    started = [sandbox.state.start_snapshot(account, servers[n % 3], f"s{n}") for n in range(120)]
    last = hz.servers.actions.get_list(page=3, per_page=50)
    assert ids(last.actions) == [a.id for a in started[100:]]
    pagination = last.meta.pagination
    assert (pagination.last_page, pagination.next_page, pagination.total_entries) == (3, None, 120)
    sandbox.clear_requests()
    assert ids(hz.servers.actions.get_all()) == [a.id for a in started]
    assert [r["query"]["page"] for r in sandbox.requests("hetzner")] == ["1", "2", "3"]  # 50 a page


def test_new_action_routes_are_charged_and_take_faults(sandbox):
    auth = {"Authorization": f"Bearer {HZ_TOKEN}"}
    base = sandbox.hetzner_endpoint
    first = requests.get(f"{base}/actions", params={"id": 1}, headers=auth, timeout=5)
    second = requests.get(f"{base}/servers/actions", headers=auth, timeout=5)
    assert (first.json()["actions"], second.json()["actions"]) == ([], [])
    assert (
        int(second.headers["RateLimit-Remaining"]) == int(first.headers["RateLimit-Remaining"]) - 1
    )
    sandbox.inject("error", service="hetzner", path=r"^/v1/servers/actions$", status=503)
    sandbox.inject("rate_limit", service="hetzner", path=r"^/v1/actions$")
    assert requests.get(f"{base}/servers/actions", headers=auth, timeout=5).status_code == 503
    limited = requests.get(f"{base}/actions", params={"id": 1}, headers=auth, timeout=5)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limit_exceeded"
    assert [r["fault"] for r in sandbox.requests("hetzner")][-2:] == ["error", "rate_limit"]


def test_image_size_is_null_while_creating_then_the_size_billed(sandbox, hz, clock):
    """As the API documents it: image_size is the size billed, null until the image is made;
    disk_size is the server's disk."""
    older = sandbox.state.add_snapshot("hz-a", "older", server_id=301, size_gigabytes=3.25)
    assert hz.images.get_by_id(older.id).image_size == 3.25
    sandbox.state.action_seconds = 0.2
    response = hz.servers.create_image(Server(id=301), description="app-1 nightly")
    assert (response.image.image_size, response.image.disk_size) == (None, 80)
    clock.advance(minutes=1)
    response.action.wait_until_finished()
    image = hz.images.get_by_id(response.image.id)
    assert (image.image_size, image.disk_size) == (2.5, 80)  # the sandbox's default size


def test_a_server_can_set_the_size_of_the_images_made_of_it(sandbox, hz):
    state = sandbox.dump_state()
    next(s for s in state["servers"] if s["id"] == 301)["snapshot_size_gigabytes"] = 12.5
    sandbox.load_state(state)
    assert sandbox.dump_state()["servers"][4]["snapshot_size_gigabytes"] == 12.5
    response = hz.servers.create_image(Server(id=301), description="app-1 nightly")
    response.action.wait_until_finished()
    assert hz.images.get_by_id(response.image.id).image_size == 12.5
