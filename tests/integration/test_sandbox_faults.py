"""Every fault kind, seen through the SDKs the tool uses (their retry behaviour included)."""

from __future__ import annotations

import asyncio
import time
from email.utils import parsedate_to_datetime

import httpx
import pytest
import requests
import telegram
from azure.core.exceptions import HttpResponseError, ServiceResponseError
from hcloud import APIException
from hcloud.actions import ActionFailedException
from hcloud.servers import Server

from tests.integration.conftest import BOT_TOKEN, DO_TOKEN, HZ_TOKEN


def statuses(sandbox, provider: str) -> list:
    return [(r["status"], r["fault"]) for r in sandbox.requests(provider)]


def test_pydo_honours_retry_after_on_429(sandbox, do):
    sandbox.inject("rate_limit", service="digitalocean", path=r"^/v2/droplets/101$", retry_after=1)
    started = time.monotonic()
    assert do.droplets.get(101)["droplet"]["id"] == 101
    assert time.monotonic() - started >= 1
    assert statuses(sandbox, "digitalocean") == [(429, "rate_limit"), (200, None)]


def test_429_carries_the_provider_body_and_headers(sandbox, make_do):
    sandbox.inject("rate_limit", service="digitalocean", retry_after=7)
    with pytest.raises(HttpResponseError) as caught:
        make_do(retry_total=0).droplets.get(101)
    response = caught.value.response
    assert response.json()["id"] == "too_many_requests"
    assert response.headers["retry-after"] == "7" and response.headers["ratelimit-remaining"] == "0"


def test_hcloud_retries_rate_limit_exceeded(sandbox, hz):
    sandbox.inject("rate_limit", service="hetzner", method="GET")
    assert hz.servers.get_by_id(301).name == "app-1"
    assert statuses(sandbox, "hetzner") == [(429, "rate_limit"), (200, None)]


def test_pydo_retries_a_500_on_get(sandbox, do):
    sandbox.inject("error", service="digitalocean", status=500)
    assert do.droplets.list()["meta"]["total"] == 3
    assert statuses(sandbox, "digitalocean") == [(500, "error"), (200, None)]


def test_pydo_retries_a_503(sandbox, do):
    sandbox.inject("error", service="digitalocean", status=503)
    assert do.snapshots.list()["meta"]["total"] == 0
    assert statuses(sandbox, "digitalocean")[0] == (503, "error")


def test_hcloud_surfaces_500_and_503(sandbox, hz):
    sandbox.inject("error", service="hetzner", status=500)
    sandbox.inject("error", service="hetzner", status=503)
    for code in ("server_error", "unavailable"):
        with pytest.raises(APIException) as caught:
            hz.servers.get_by_id(301)
        assert caught.value.code == code


def test_delay_slows_the_answer_and_can_time_a_client_out(sandbox, make_do, hz):
    sandbox.inject("delay", service="hetzner", seconds=0.3)
    started = time.monotonic()
    hz.servers.get_by_id(301)
    assert time.monotonic() - started >= 0.3
    sandbox.inject("delay", service="digitalocean", seconds=1.0)
    with pytest.raises(ServiceResponseError):
        make_do(retry_total=0).droplets.get(101, read_timeout=0.2)


def test_dropped_connection(sandbox, do, hz):
    sandbox.inject("drop", service="digitalocean")
    assert do.droplets.get(101)["droplet"]["id"] == 101  # pydo retries the GET
    assert statuses(sandbox, "digitalocean") == [(None, "drop"), (200, None)]
    sandbox.inject("drop", service="hetzner")
    with pytest.raises(requests.exceptions.ConnectionError):  # hcloud does not retry it
        hz.servers.get_by_id(301)


def test_fault_matches_method_and_path_and_counts(sandbox, make_do):
    sandbox.inject("error", service="digitalocean", method="POST", path=r"/actions$", count=2)
    do = make_do(retry_total=0)
    do.droplets.get(101)
    for _ in range(2):
        with pytest.raises(HttpResponseError):
            do.droplet_actions.post(101, {"type": "snapshot"})
    assert do.droplet_actions.post(101, {"type": "snapshot"})["action"]["status"] == "in-progress"
    assert statuses(sandbox, "digitalocean") == [
        (200, None),
        (500, "error"),
        (500, "error"),
        (201, None),
    ]
    assert sandbox.faults.list()[0]["fired"] == 2


def test_probability_is_repeatable_with_a_seed(sandbox):
    def pattern() -> list:
        sandbox.clear_faults()
        sandbox.clear_requests()
        sandbox.inject("error", service="webhook", count=None, probability=0.5, seed=7)
        with httpx.Client() as client:
            for _ in range(20):
                client.post(sandbox.webhook_url("flaky"), json={})
        return [r["status"] for r in sandbox.requests("webhook")]

    first = pattern()
    assert first == pattern()
    assert 0 < first.count(500) < 20


def test_failed_snapshot_action_on_digitalocean_creates_no_image(sandbox, do):
    sandbox.inject("fail_action", service="digitalocean", server_id=102)
    action = do.droplet_actions.post(102, {"type": "snapshot", "name": "doomed"})["action"]
    deadline = time.monotonic() + 5
    while action["status"] == "in-progress" and time.monotonic() < deadline:
        time.sleep(0.02)
        action = do.actions.get(action["id"])["action"]
    assert action["status"] == "errored"
    assert do.droplets.list_snapshots(102)["snapshots"] == []


def test_failed_action_fault_fires_once(sandbox, hz):
    sandbox.inject("fail_action", service="hetzner")
    with pytest.raises(ActionFailedException):
        hz.servers.create_image(Server(id=301)).action.wait_until_finished()
    again = hz.servers.create_image(Server(id=301)).action
    again.wait_until_finished()
    assert again.status == "success"


@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
def test_telegram_flood_control_raises_retry_after(sandbox):
    sandbox.inject("rate_limit", service="telegram", path="sendMessage", retry_after=3)

    async def send():
        async with telegram.Bot(BOT_TOKEN, base_url=sandbox.telegram_base_url) as bot:
            return await bot.send_message(1, "hi")

    with pytest.raises(telegram.error.RetryAfter) as caught:
        asyncio.run(send())
    assert "retry in 3" in str(caught.value).lower()
    assert asyncio.run(send()).text == "hi"


def test_webhook_faults(sandbox):
    sandbox.inject("rate_limit", service="webhook", retry_after=2)
    sandbox.inject("error", service="webhook", status=502)
    first = httpx.post(sandbox.webhook_url("n8n"), json={"a": 1})
    second = httpx.post(sandbox.webhook_url("n8n"), json={"a": 1})
    third = httpx.post(sandbox.webhook_url("n8n"), json={"a": 1})
    assert (first.status_code, first.headers["retry-after"]) == (429, "2")
    assert (second.status_code, third.status_code) == (502, 200)
    assert len(sandbox.webhook_deliveries("n8n")) == 1


def test_unknown_fault_kind_is_refused(sandbox):
    with pytest.raises(ValueError):
        sandbox.inject("meteor")


def test_garble_acts_then_answers_with_a_body_cut_short(sandbox, hz):
    sandbox.inject("garble", service="hetzner", method="POST", path="create_image")
    with pytest.raises(APIException) as caught:  # hcloud: the body is not JSON
        hz.servers.create_image(Server(id=301), description="garbled")
    assert caught.value.code == 201
    assert [i.description for i in hz.images.get_all(type=["snapshot"])] == [
        "garbled"
    ]  # it took effect
    assert statuses(sandbox, "hetzner")[0] == (201, "garble")


def test_patch_merges_into_the_reply_and_can_drop_keys(sandbox, make_do, hz):
    sandbox.inject(
        "patch",
        service="hetzner",
        path="^/v1/servers$",
        patch={"meta": {"pagination": {"total_pages": 1}}},
    )
    with pytest.raises(
        TypeError
    ):  # hcloud 2.27 passes meta.pagination to a constructor as keywords
        hz.servers.get_all()
    sandbox.inject(
        "patch", service="digitalocean", method="POST", patch={"action": None, "extra": {"a": 1}}
    )
    assert make_do(retry_total=0).droplet_actions.post(101, {"type": "snapshot"}) == {
        "extra": {"a": 1}
    }
    assert [r["fault"] for r in sandbox.requests()] == ["patch", "patch"]


def test_patch_without_a_patch_is_refused(sandbox):
    with pytest.raises(ValueError, match="patch"):
        sandbox.inject("patch")


def test_fault_headers_are_set_on_its_reply(sandbox):
    sandbox.inject("rate_limit", service="hetzner", retry_after=8, headers={"Retry-After": "8"})
    sandbox.inject("error", service="digitalocean", status=503, headers={"Retry-After": "4"})
    auth = {"Authorization": f"Bearer {HZ_TOKEN}"}
    hetzner = requests.get(f"{sandbox.hetzner_endpoint}/servers", headers=auth)
    assert (hetzner.status_code, hetzner.headers["Retry-After"]) == (429, "8")
    digitalocean = requests.get(
        f"{sandbox.url}/v2/droplets", headers={"Authorization": f"Bearer {DO_TOKEN}"}
    )
    assert (digitalocean.status_code, digitalocean.headers["retry-after"]) == (503, "4")


def test_hetzner_rate_limit_says_when_as_hetzner_documents_it(sandbox):
    sandbox.inject("rate_limit", service="hetzner", retry_after=2.5)
    response = requests.get(
        f"{sandbox.hetzner_endpoint}/servers", headers={"Authorization": f"Bearer {HZ_TOKEN}"}
    )
    assert response.status_code == 429 and "Retry-After" not in response.headers
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    limit, reset = (
        int(response.headers["RateLimit-Limit"]),
        int(response.headers["RateLimit-Reset"]),
    )
    sent = parsedate_to_datetime(response.headers["Date"]).timestamp()
    assert response.headers["RateLimit-Remaining"] == "0"
    assert (
        reset - sent
    ) / limit == 2.5  # the budget refills evenly: one request's share of the reset
    assert len([k for k in response.raw.headers.keys() if k.lower() == "date"]) == 1


def test_a_shift_changes_the_listing_after_the_page_it_names_is_served(sandbox, do):
    """Other actors between two page reads: the page asked for shows the listing before them,
    the next one after. Set through the control API as any fault."""
    for n in range(30):
        sandbox.state.add_snapshot("do-a", f"s{n}", server_id=101, id=1000 + n)
    created = httpx.post(
        f"{sandbox.url}/_sandbox/faults",
        json={
            "kind": "shift",
            "service": "digitalocean",
            "path": "^/v2/snapshots$",
            "page": 1,
            "insert": 1,
            "ids": [7],
            "delete": [1029],
            "server_id": 102,
        },
    )
    assert created.status_code == 201 and created.json()["page"] == 1
    first = do.snapshots.list(per_page=20, page=1)
    assert first["meta"]["total"] == 30 and first["snapshots"][0]["id"] == "1000"
    second = do.snapshots.list(per_page=20, page=2)
    assert second["meta"]["total"] == 30  # one in, one out
    assert (
        second["snapshots"][0]["id"] == first["snapshots"][-1]["id"] == "1019"
    )  # page 1's last, pushed onto page 2 as well
    assert (
        sandbox.state.snapshots[7].name == "shifted-7"
        and sandbox.state.snapshots[7].server_id == 102
    )
    assert 1029 not in sandbox.state.snapshots
    bad = httpx.post(
        f"{sandbox.url}/_sandbox/faults", json={"kind": "shift", "resource": "volumes"}
    )
    assert bad.status_code == 400 and "volumes" in bad.json()["error"]
