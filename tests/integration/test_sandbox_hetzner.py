"""The sandbox's Hetzner Cloud API, driven through hcloud over HTTP."""

from __future__ import annotations

from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
import requests
from tests.integration.conftest import EPOCH, HZ_OTHER_TOKEN, HZ_TOKEN
from hcloud import APIException
from hcloud.actions import ActionFailedException
from hcloud.images import Image
from hcloud.servers import Server


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


def test_image_listing_without_type_includes_system_images(hz):
    types = {image.type for image in hz.images.get_all()}
    assert types == {"system"}


def test_image_label_selector_and_sort(sandbox, hz):
    sandbox.state.add_snapshot("hz-a", "old", server_id=301, created=EPOCH - timedelta(days=2),
                               labels={"managed-by": "snapshot-policy"})
    sandbox.state.add_snapshot("hz-a", "new", server_id=301, created=EPOCH - timedelta(days=1),
                               labels={"managed-by": "snapshot-policy"})
    sandbox.state.add_snapshot("hz-a", "manual", server_id=301)
    managed = hz.images.get_all(type=["snapshot"], label_selector="managed-by=snapshot-policy",
                                sort=["created:desc"])
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
    assert next(s for s in sandbox.dump_state()["servers"] if s["id"] == 301)["ipv6"] == "2001:db8::/64"  # round-trips
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
    response = requests.get(f"{sandbox.hetzner_endpoint}/servers/301", headers={"Authorization": f"Bearer {HZ_TOKEN}"})
    assert response.status_code == 429 and "Retry-After" not in response.headers
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    sent = parsedate_to_datetime(response.headers["Date"]).timestamp()
    # Two requests an hour, both spent: one is back in half an hour, all of them in an hour.
    assert response.headers["RateLimit-Remaining"] == "0"
    assert 3590 <= int(response.headers["RateLimit-Reset"]) - sent <= 3602
