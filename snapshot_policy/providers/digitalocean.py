"""DigitalOcean through pydo: droplets, droplet snapshots, the snapshot action, the tags API.

pydo returns the error body instead of raising for the statuses an operation documents
(404 mostly), so every call goes through `_call`, which reads the real HTTP status. pydo's
own retries are off (`retry_total=0`); RetryPolicy repeats what is safe to repeat.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import pydo
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.pipeline.policies import AzureKeyCredentialPolicy

from snapshot_policy.model import DIGITALOCEAN, ProviderError, Server, Target
from snapshot_policy.providers.ownership import DIGITALOCEAN_TAG, CloudSnapshot
from snapshot_policy.providers.retry import RetryPolicy, Timing

PAGE_SIZE = 200
# A droplet busy with another event answers 422 to a new action; it is worth asking again later.
BUSY = 422


class DigitalOcean:
    name = DIGITALOCEAN

    def __init__(self, token: str, endpoint: str, timing: Timing, retry: RetryPolicy):
        # The explicit policy sends the same bearer header but, unlike pydo's default, also
        # over http — connect() allows http only for loopback (the sandbox).
        self._client = pydo.Client(
            token,
            endpoint=endpoint,
            connection_timeout=timing.request_timeout,
            read_timeout=timing.request_timeout,
            retry_total=0,
            authentication_policy=AzureKeyCredentialPolicy(AzureKeyCredential(token), "Authorization", prefix="Bearer"),
            raw_response_hook=self._count,
        )
        self.requests = 0
        self._timing = timing
        self._retry = retry
        self._tag_exists = False
        self._tag_lock = threading.Lock()

    def _count(self, response: Any) -> None:
        self.requests += 1  # every HTTP exchange, for the metrics file

    def servers(self, selector: str | None = None) -> list[Server]:
        filters = {"tag_name": selector} if selector else {}
        return [_server(d) for d in self._pages("list droplets", "droplets", self._client.droplets.list, **filters)]

    def snapshots(self) -> list[CloudSnapshot]:
        listing = self._pages("list snapshots", "snapshots", self._client.snapshots.list, resource_type="droplet")
        return [_snapshot(s) for s in listing]

    def create_snapshot(self, target: Target, name: str) -> CloudSnapshot:
        droplet_id = int(target.server_id)
        earlier = self._snapshot_actions(droplet_id)
        busy = [a["id"] for a in earlier if a["status"] == "in-progress"]
        if busy:
            raise ProviderError(self.name, "create snapshot", None, f"droplet {droplet_id} already has snapshot action {busy[0]} in progress; not starting a second one", code="snapshot_in_progress")
        action_id = self._start_snapshot(droplet_id, name, {a["id"] for a in earlier})
        self._wait_for_action(action_id, name)
        image = self._find_image(droplet_id, name)
        self._tag(image["id"])
        return CloudSnapshot(str(image["id"]), name, _time(image["created_at"]), target.server_id, {DIGITALOCEAN_TAG: ""})

    def mark_snapshot(self, target: Target, snapshot_id: str) -> None:
        self._tag(int(snapshot_id))

    def delete_snapshot(self, snapshot_id: str) -> None:
        # A 404 means it is gone already, which is what was asked for.
        self._read("delete snapshot", self._client.snapshots.delete, missing_ok=True, snapshot_id=snapshot_id)

    def _start_snapshot(self, droplet_id: int, name: str, known_actions: set[int]) -> int:
        """Start the snapshot action and return its id; after a lost reply, a snapshot
        action that was not there before is taken as the one this request started."""

        def start() -> int:
            body = {"type": "snapshot", "name": name}
            status, reply = self._call("start snapshot", self._client.droplet_actions.post, droplet_id=droplet_id, body=body)
            _raise_for(self.name, "start snapshot", status, reply)
            return reply["action"]["id"]

        def started_meanwhile() -> int | None:
            return next((a["id"] for a in self._snapshot_actions(droplet_id) if a["id"] not in known_actions), None)

        return self._retry.start_once(
            start, started_meanwhile, lambda error: error.status == BUSY, self._timing.creation_timeout, self._timing.poll_interval
        )

    def _snapshot_actions(self, droplet_id: int) -> list[dict[str, Any]]:
        actions = self._pages("list droplet actions", "actions", self._client.droplet_actions.list, droplet_id=droplet_id)
        return [a for a in actions if a.get("type") == "snapshot"]

    def _wait_for_action(self, action_id: int, name: str) -> None:
        def finished() -> str | None:
            status = self._read("get action", self._client.actions.get, action_id=action_id)[1]["action"]["status"]
            return None if status == "in-progress" else status

        try:
            outcome = self._retry.poll(finished, self._timing.creation_timeout, self._timing.poll_interval, f"snapshot {name}")
        except TimeoutError as error:
            raise ProviderError(self.name, "wait for snapshot", None, str(error)) from None
        if outcome != "completed":
            raise ProviderError(self.name, "wait for snapshot", None, f"snapshot action {action_id} for {name} ended {outcome}", code="action_failed")

    def _find_image(self, droplet_id: int, name: str) -> dict[str, Any]:
        """The action does not name its image: find it by droplet and exact name once done."""
        listing = self._pages("list droplet snapshots", "snapshots", self._client.droplets.list_snapshots, droplet_id=droplet_id)
        matches = sorted((s for s in listing if s["name"] == name), key=lambda s: s["created_at"])
        if not matches:
            raise ProviderError(self.name, "find new snapshot", None, f"snapshot {name} finished but droplet {droplet_id} does not list it")
        return matches[-1]

    def _tag(self, image_id: int) -> None:
        with self._tag_lock:  # parallel targets: create the tag once, not once per worker
            if not self._tag_exists:
                self._read("create tag", self._client.tags.create, body={"name": DIGITALOCEAN_TAG})
                self._tag_exists = True
        resources = {"resources": [{"resource_id": str(image_id), "resource_type": "image"}]}
        self._read("tag snapshot", self._client.tags.assign_resources, tag_id=DIGITALOCEAN_TAG, body=resources)

    def _pages(self, operation: str, key: str, method: Callable[..., Any], **params: Any) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            body = self._read(operation, method, page=page, per_page=PAGE_SIZE, **params)[1]
            yield from body[key]
            if not body.get("links", {}).get("pages", {}).get("next"):
                return
            page += 1

    def _read(self, operation: str, method: Callable[..., Any], missing_ok: bool = False, **params: Any) -> tuple[int, Any]:
        """Call a read or a delete, retried while transient. With `missing_ok` a 404 is returned, not raised."""

        def attempt() -> tuple[int, Any]:
            status, body = self._call(operation, method, **params)
            if not (missing_ok and status == 404):
                _raise_for(self.name, operation, status, body)
            return status, body

        return self._retry.call(attempt)

    def _call(self, operation: str, method: Callable[..., Any], **params: Any) -> tuple[int, Any]:
        """Call pydo once and return (HTTP status, body). Raise ProviderError for raised failures."""
        try:
            return method(**params, cls=lambda response, body, headers: (response.http_response.status_code, body))
        except HttpResponseError as error:
            response = error.response
            body = _json(response)
            raise ProviderError(self.name, operation, error.status_code, _message(body, error.reason), _retry_after(response.headers)) from None
        except AzureError as error:
            raise ProviderError(self.name, operation, None, type(error).__name__ + ": " + str(error.message)) from None


def _raise_for(provider: str, operation: str, status: int, body: Any) -> None:
    if status >= 400:
        raise ProviderError(provider, operation, status, _message(body, "request refused"))


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _message(body: Any, fallback: str | None) -> str:
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return fallback or "no message"


def _retry_after(headers: Any) -> float | None:
    """Return the wait a 429 asks for: Retry-After, else until the rate-limit reset.

    The reset is a Unix time on the server's clock, so it is measured from the response's own
    `Date`, not from this machine's clock (which may be skewed); without a Date, None.
    """
    if headers.get("retry-after", "").isdigit():
        return float(headers["retry-after"])
    if headers.get("ratelimit-remaining") == "0" and headers.get("ratelimit-reset", "").isdigit():
        try:
            sent = parsedate_to_datetime(headers.get("date", ""))
        except (TypeError, ValueError):
            return None
        if sent.tzinfo is None:  # "-0000": UTC, origin unknown
            sent = sent.replace(tzinfo=timezone.utc)
        return max(0.0, float(headers["ratelimit-reset"]) - sent.timestamp())
    return None


def _server(droplet: dict[str, Any]) -> Server:
    return Server(str(droplet["id"]), droplet["name"], {tag: "" for tag in droplet.get("tags", [])})


def _snapshot(item: dict[str, Any]) -> CloudSnapshot:
    return CloudSnapshot(
        id=str(item["id"]),
        name=item["name"],
        created=_time(item["created_at"]),
        server_id=str(item["resource_id"]) if item.get("resource_id") is not None else None,
        labels={tag: "" for tag in item.get("tags") or []},
    )


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
