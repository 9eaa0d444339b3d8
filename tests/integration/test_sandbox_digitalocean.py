"""The sandbox's DigitalOcean API, driven through pydo over HTTP."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from snapshot_policy.sandbox.ratelimit import SlidingWindow
from snapshot_policy.sandbox.state import format_time
from tests.integration.conftest import DO_OTHER_TOKEN, EPOCH


def wait(do, action_id: int) -> dict:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        action = do.actions.get(action_id)["action"]
        if action["status"] != "in-progress":
            return action
        time.sleep(0.02)
    raise AssertionError("action did not finish")


def all_pages(do, method, key: str, *args, **kwargs) -> tuple[list[dict], int]:
    """Follow links.pages.next the way an adapter would; return the items and the page count."""
    items, page, pages = [], 1, 0
    while True:
        body = method(*args, page=page, per_page=200, **kwargs)
        items += body[key]
        pages += 1
        if "next" not in body["links"]["pages"]:
            return items, pages
        page += 1


def test_droplet_get_returns_the_seeded_droplet(do):
    droplet = do.droplets.get(101)["droplet"]
    assert (droplet["id"], droplet["name"], droplet["tags"]) == (101, "web-1", ["web", "env:prod"])
    assert droplet["locked"] is False


def test_droplet_list_filters_by_tag_and_name(do):
    assert [d["id"] for d in do.droplets.list(tag_name="web")["droplets"]] == [101, 102]
    assert [d["id"] for d in do.droplets.list(name="DB-1")["droplets"]] == [103]


def test_snapshot_listing_pages_through_450_snapshots(sandbox, do):
    for n in range(450):
        sandbox.state.add_snapshot("do-a", f"web-1-{n:03}", server_id=101)
    first = do.snapshots.list(resource_type="droplet", per_page=200)
    assert first["meta"]["total"] == 450
    assert first["links"]["pages"]["next"].startswith(f"{sandbox.url}/v2/snapshots?")
    assert "page=3" in first["links"]["pages"]["last"]
    items, pages = all_pages(do, do.snapshots.list, "snapshots", resource_type="droplet")
    assert pages == 3 and len(items) == 450
    assert len({s["id"] for s in items}) == 450 and all(isinstance(s["id"], str) for s in items)
    last = do.snapshots.list(resource_type="droplet", per_page=200, page=3)
    assert set(last["links"]["pages"]) == {"first", "prev"}


def test_page_links_are_absolute_and_followable(sandbox, do):
    for n in range(5):
        sandbox.state.add_snapshot("do-a", f"s{n}", server_id=101)
    body = do.snapshots.list(per_page=2)
    next_url = body["links"]["pages"]["next"]
    auth = {"Authorization": "Bearer do-a-token"}
    followed = requests.get(next_url, headers=auth, timeout=5).json()
    assert [s["name"] for s in followed["snapshots"]] == ["s2", "s3"]


def test_droplet_snapshots_have_integer_ids_and_page(sandbox, do):
    for n in range(250):
        sandbox.state.add_snapshot("do-a", f"web-2-{n}", server_id=102)
    sandbox.state.add_snapshot("do-a", "web-1-only", server_id=101)
    items, pages = all_pages(do, do.droplets.list_snapshots, "snapshots", 102)
    assert pages == 2 and len(items) == 250
    assert all(isinstance(s["id"], int) and s["type"] == "snapshot" for s in items)


def test_snapshot_appears_only_once_its_action_completed(sandbox, do, clock):
    sandbox.state.action_seconds = 0.3
    action = do.droplet_actions.post(101, {"type": "snapshot", "name": "web-1-new"})["action"]
    assert action["status"] == "in-progress" and action["resource_id"] == 101
    assert do.droplets.get(101)["droplet"]["locked"] is True
    assert do.droplets.list_snapshots(101)["snapshots"] == []
    clock.advance(seconds=30)
    done = wait(do, action["id"])
    assert done["status"] == "completed"
    assert done["started_at"] == format_time(EPOCH)
    [snapshot] = do.droplets.list_snapshots(101)["snapshots"]
    assert snapshot["name"] == "web-1-new" and snapshot["created_at"] == format_time(EPOCH)
    assert do.droplets.get(101)["droplet"]["snapshot_ids"] == [snapshot["id"]]
    [listed] = do.snapshots.list(resource_type="droplet")["snapshots"]
    assert listed["id"] == str(snapshot["id"]) and listed["resource_id"] == "101"


def test_droplets_list_their_snapshots_as_they_are_now(sandbox, do):
    """The droplets' snapshot ids are kept between pages (issue 13, item 5), never stale."""
    one = sandbox.state.add_snapshot("do-a", "one", server_id=101)
    assert do.droplets.get(101)["droplet"]["snapshot_ids"] == [one.id]
    two = sandbox.state.add_snapshot("do-a", "two", server_id=101)
    listed = {d["id"]: d["snapshot_ids"] for d in do.droplets.list()["droplets"]}
    assert listed[101] == [one.id, two.id] and listed[102] == []
    do.snapshots.delete(str(one.id))
    assert do.droplets.get(101)["droplet"]["snapshot_ids"] == [two.id]


def test_second_action_while_one_runs_is_refused_with_422(sandbox, do):
    sandbox.state.action_seconds = 5
    do.droplet_actions.post(101, {"type": "snapshot", "name": "a"})
    with pytest.raises(HttpResponseError) as caught:
        do.droplet_actions.post(101, {"type": "snapshot", "name": "b"})
    assert caught.value.status_code == 422
    assert caught.value.response.json()["id"] == "unprocessable_entity"


def test_delete_snapshot_and_delete_image_both_remove_it(sandbox, do):
    one = sandbox.state.add_snapshot("do-a", "one", server_id=101)
    two = sandbox.state.add_snapshot("do-a", "two", server_id=101)
    assert do.snapshots.delete(str(one.id)) is None
    assert do.images.delete(two.id) is None
    assert do.snapshots.list()["snapshots"] == []
    missing = do.snapshots.get(str(one.id))
    assert missing == {
        "id": "not_found",
        "message": "The resource you requested could not be found.",
        "request_id": missing["request_id"],
    }


def test_tags_are_created_and_attached_to_snapshot_images(sandbox, do):
    snapshot = sandbox.state.add_snapshot("do-a", "tagged", server_id=101)
    assert do.tags.create(body={"name": "snapshot-policy"})["tag"]["name"] == "snapshot-policy"
    assert do.tags.create(body={"name": "Snapshot-Policy"})["tag"]["name"] == "snapshot-policy"
    do.tags.assign_resources(
        "snapshot-policy",
        {"resources": [{"resource_id": str(snapshot.id), "resource_type": "image"}]},
    )
    assert do.snapshots.get(str(snapshot.id))["snapshot"]["tags"] == ["snapshot-policy"]
    assert do.tags.create(body={"name": "bad tag!"})["error"]
    image = {"resource_id": str(snapshot.id), "resource_type": "image"}
    missing = do.tags.assign_resources("never-created", {"resources": [image]})
    assert missing["id"] == "not_found"


def test_bad_token_is_401(make_do):
    with pytest.raises(ClientAuthenticationError) as caught:
        make_do("wrong-token").droplets.get(101)
    assert caught.value.response.json()["id"] == "unauthorized"


def test_another_accounts_droplet_and_snapshot_are_404(do, make_do):
    assert do.droplets.get(201)["id"] == "not_found"
    assert do.snapshots.get("9201")["id"] == "not_found"
    assert do.droplet_actions.post(201, {"type": "snapshot"})["id"] == "not_found"
    theirs = make_do(DO_OTHER_TOKEN).snapshots.list()["snapshots"]
    assert [s["name"] for s in theirs] == ["other-snap"]


def test_rate_limit_headers_count_down(do):
    headers = do.droplets.get(101, cls=lambda pipeline, body, h: h)
    again = do.droplets.get(101, cls=lambda pipeline, body, h: h)
    assert headers["ratelimit-limit"] == 5000
    assert again["ratelimit-remaining"] == headers["ratelimit-remaining"] - 1
    assert again["ratelimit-reset"] > time.time()


def test_exhausted_budget_answers_429_with_retry_after(sandbox, make_do):
    sandbox.state.accounts["do-a"].rate_limit = 2
    do = make_do(retry_total=0)
    do.droplets.get(101)
    do.droplets.get(101)
    with pytest.raises(HttpResponseError) as caught:
        do.droplets.get(101)
    assert caught.value.status_code == 429
    assert int(caught.value.response.headers["retry-after"]) > 0
    assert caught.value.response.headers["ratelimit-remaining"] == "0"


def test_seeded_snapshots_keep_their_past_creation_times(sandbox, do):
    old = EPOCH - timedelta(days=400)
    sandbox.state.add_snapshot("do-a", "ancient", server_id=101, created=old, tags=["keep"])
    [snapshot] = do.snapshots.list()["snapshots"]
    assert snapshot["created_at"] == format_time(old) and snapshot["tags"] == ["keep"]


def test_actions_list_is_every_account_action_newest_first_and_pages(sandbox, do, make_do):
    sandbox.state.action_seconds = 0  # each finished before the next one on its droplet
    account = sandbox.state.accounts["do-a"]
    droplets = [sandbox.state.servers[n] for n in (101, 102, 103)]
    started = [sandbox.state.start_snapshot(account, droplets[n % 3], f"s{n}") for n in range(249)]
    make_do(DO_OTHER_TOKEN).droplet_actions.post(201, {"type": "snapshot"})  # another account's
    posted = do.droplet_actions.post(101, {"type": "snapshot", "name": "via-api"})["action"]
    newest_first = [posted["id"]] + [a.id for a in reversed(started)]
    first = do.actions.list(per_page=200)
    assert first["meta"]["total"] == 250
    assert [a["id"] for a in first["actions"]] == newest_first[:200]
    assert set(first["links"]["pages"]) == {"next", "last"}
    assert first["actions"][0] == do.actions.get(posted["id"])["action"]
    items, pages = all_pages(do, do.actions.list, "actions")
    assert pages == 2 and [a["id"] for a in items] == newest_first
    assert [a["id"] for a in do.actions.list(page=2, per_page=20)["actions"]] == newest_first[20:40]


def test_actions_list_shows_an_action_complete(sandbox, do):
    sandbox.state.action_seconds = 1  # long enough to list it in progress, on a slow machine
    posted = do.droplet_actions.post(102, {"type": "snapshot", "name": "x"})["action"]
    [listed] = do.actions.list()["actions"]
    assert (listed["id"], listed["status"], listed["completed_at"]) == (
        posted["id"],
        "in-progress",
        None,
    )
    wait(do, posted["id"])
    [listed] = do.actions.list()["actions"]
    assert listed["status"] == "completed" and listed["completed_at"] is not None
    assert (listed["type"], listed["resource_id"], listed["region_slug"]) == (
        "snapshot",
        102,
        "nyc3",
    )


def test_burst_limit_answers_429_with_an_honest_retry_after(sandbox, make_do):
    sandbox.state.accounts["do-a"].burst_limit = 3
    do = make_do(retry_total=0)
    headers = [do.actions.list(cls=lambda pipeline, body, h: h) for _ in range(2)]
    do.droplets.get(101)
    with pytest.raises(HttpResponseError) as caught:
        do.actions.list()
    response = caught.value.response
    assert caught.value.status_code == 429 and response.json()["id"] == "too_many_requests"
    assert 58 <= int(response.headers["retry-after"]) <= 60  # the first of the 3 leaves in a minute
    assert response.headers["ratelimit-remaining"] == "0"
    assert headers[1]["ratelimit-remaining"] == headers[0]["ratelimit-remaining"] - 1
    assert make_do(DO_OTHER_TOKEN, retry_total=0).actions.list()["actions"] == []  # per account
    sandbox.state.accounts["do-a"].burst_limit = None
    assert do.droplets.get(101)["droplet"]["id"] == 101


def test_burst_window_slides_one_request_at_a_time():
    now = [1000.0]
    window = SlidingWindow(2, now=lambda: now[0])
    window.take()
    now[0] += 30
    window.take()
    now[0] += 10
    assert window.full() and window.retry_after() == 20
    now[0] += 20  # the first request is a minute old: one is free, the second still counts
    assert not window.full() and window.retry_after() == 0
    window.take()
    now[0] += 0.5
    assert window.full() and window.retry_after() == 30  # 29.5 s, rounded up


def test_actions_list_takes_faults_like_any_route(sandbox, make_do):
    sandbox.inject("error", service="digitalocean", path=r"^/v2/actions$", status=500)
    do = make_do(retry_total=0)
    assert do.actions.get(999)["id"] == "not_found"  # /v2/actions/999: not matched
    with pytest.raises(HttpResponseError) as caught:
        do.actions.list()
    assert caught.value.status_code == 500
    assert [r["fault"] for r in sandbox.requests("digitalocean")] == [None, "error"]


def test_snapshots_carry_the_billed_size_apart_from_the_minimum_disk(sandbox, do):
    """size_gigabytes is what is billed; min_disk_size the disk a restore needs. A new
    snapshot is as large as its droplet's `snapshot_size_gigabytes` says."""
    sandbox.state.add_snapshot("do-a", "older", server_id=101, size_gigabytes=4.75)
    sandbox.state.servers[101].snapshot_size_gigabytes = 5.5
    action = do.droplet_actions.post(101, {"type": "snapshot", "name": "web-1-new"})["action"]
    wait(do, action["id"])
    listed = {s["name"]: s for s in do.snapshots.list(resource_type="droplet")["snapshots"]}
    assert (listed["web-1-new"]["size_gigabytes"], listed["web-1-new"]["min_disk_size"]) == (
        5.5,
        25,
    )
    assert [s["size_gigabytes"] for s in do.droplets.list_snapshots(101)["snapshots"]] == [
        4.75,
        5.5,
    ]
