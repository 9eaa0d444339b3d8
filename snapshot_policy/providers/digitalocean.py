"""DigitalOcean through pydo: droplets, droplet snapshots, the snapshot action, the tags API.

pydo returns the error body instead of raising for the statuses an operation documents
(404 mostly), so every call goes through `_call`, which reads the real HTTP status. pydo's
own retries are off (`retry_total=0`); RetryPolicy repeats what is safe to repeat.

pydo returns plain JSON, so reading it is ours: `_call` reads each reply with a function
run under the same guard as the call, and anything unexpected in it (a missing key, a
body that is not JSON) is a ProviderError saying the reply could not be understood, never
a refusal. A refusal is certain only when DigitalOcean states it: a 4xx with its error body.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

import pydo
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.pipeline.policies import AzureKeyCredentialPolicy

from snapshot_policy.model import DIGITALOCEAN, START_SNAPSHOT, CloudSnapshot, ProviderError, Server
from snapshot_policy.providers.retry import RetryPolicy, Timing, advised_wait, timed_out, unreadable

T = TypeVar("T")
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
            raw_response_hook=self._seen,
        )
        self._last = threading.local()  # this thread's latest HTTP status, for _call
        self.requests = 0
        self._timing = timing
        self._retry = retry
        self._tags_made: set[str] = set()
        self._tag_lock = threading.Lock()

    def _seen(self, response: Any) -> None:
        self.requests += 1  # every HTTP exchange, for the metrics file
        self._last.status = response.http_response.status_code

    def servers(self, selector: str | None = None) -> list[Server]:
        filters = {"tag_name": selector} if selector else {}
        return self._pages("list droplets", "droplets", _server, self._client.droplets.list, **filters)

    def snapshots(self) -> list[CloudSnapshot]:
        return self._pages("list snapshots", "snapshots", _snapshot, self._client.snapshots.list, resource_type="droplet")

    def create_snapshot(self, server_id: str, name: str, labels: Mapping[str, str]) -> CloudSnapshot:
        droplet_id = int(server_id)
        earlier = self._snapshot_actions(droplet_id)
        busy = [action_id for action_id, status in earlier if status == "in-progress"]
        if busy:
            raise ProviderError(self.name, "create snapshot", None, f"droplet {droplet_id} already has snapshot action {busy[0]} in progress; not starting a second one", code="snapshot_in_progress")
        action_id = self._start_snapshot(droplet_id, name, {action_id for action_id, _ in earlier})
        self._wait_for_action(action_id, name)
        image_id, created = self._find_image(droplet_id, name)
        self._tag(image_id, labels)
        return CloudSnapshot(str(image_id), name, created, server_id, {tag: "" for tag in labels})

    def mark_snapshot(self, snapshot_id: str, labels: Mapping[str, str]) -> None:
        self._tag(int(snapshot_id), labels)

    def delete_snapshot(self, snapshot_id: str) -> None:
        # A 404 means it is gone already, which is what was asked for.
        self._read("delete snapshot", self._client.snapshots.delete, missing_ok=True, snapshot_id=snapshot_id)

    def _start_snapshot(self, droplet_id: int, name: str, known_actions: set[int]) -> int:
        """Start the snapshot action and return its id; after a lost reply, a snapshot
        action that was not there before is taken as the one this request started."""

        def start() -> int:
            body = {"type": "snapshot", "name": name}
            return self._call(START_SNAPSHOT, self._client.droplet_actions.post, lambda reply: int(reply["action"]["id"]), droplet_id=droplet_id, body=body)

        def started_meanwhile() -> int | None:
            return next((action_id for action_id, _ in self._snapshot_actions(droplet_id) if action_id not in known_actions), None)

        return self._retry.start_once(
            start, started_meanwhile, lambda error: error.status == BUSY, self._timing.creation_timeout, self._timing.poll_interval
        )

    def _snapshot_actions(self, droplet_id: int) -> list[tuple[int, str]]:
        """(id, status) of the droplet's snapshot actions."""
        actions = self._pages("list droplet actions", "actions", _action, self._client.droplet_actions.list, droplet_id=droplet_id)
        return [(action_id, status) for kind, action_id, status in actions if kind == "snapshot"]

    def _wait_for_action(self, action_id: int, name: str) -> None:
        def finished() -> str | None:
            status = self._read("get action", self._client.actions.get, lambda body: _action_status(body["action"]), action_id=action_id)
            return None if status == "in-progress" else status

        try:
            outcome = self._retry.poll(finished, self._timing.creation_timeout, self._timing.poll_interval, f"snapshot {name}")
        except TimeoutError:
            raise timed_out(self.name, f"snapshot {name}", self._timing.creation_timeout) from None
        if outcome != "completed":
            raise ProviderError(self.name, "wait for snapshot", None, f"snapshot action {action_id} for {name} ended {outcome}", code="action_failed")

    def _find_image(self, droplet_id: int, name: str) -> tuple[int, datetime]:
        """The action does not name its image: find it by droplet and exact name once done."""
        listing = self._pages(
            "list droplet snapshots", "snapshots", lambda s: (s["name"], _time(s["created_at"]), int(s["id"])),
            self._client.droplets.list_snapshots, droplet_id=droplet_id,
        )
        matches = sorted((created, image_id) for named, created, image_id in listing if named == name)
        if not matches:
            raise ProviderError(self.name, "find new snapshot", None, f"snapshot {name} finished but droplet {droplet_id} does not list it")
        created, image_id = matches[-1]
        return image_id, created

    def _tag(self, image_id: int, tags: Iterable[str]) -> None:
        """Tag the image with each of `tags` (label keys: DigitalOcean tags carry no value)."""
        resources = {"resources": [{"resource_id": str(image_id), "resource_type": "image"}]}
        for tag in tags:
            with self._tag_lock:  # parallel targets: create each tag once, not once per worker
                if tag not in self._tags_made:
                    self._read("create tag", self._client.tags.create, body={"name": tag})
                    self._tags_made.add(tag)
            self._read("tag snapshot", self._client.tags.assign_resources, tag_id=tag, body=resources)

    def _pages(self, operation: str, key: str, convert: Callable[[Any], T], method: Callable[..., Any], **params: Any) -> list[T]:
        """Every item of a paginated listing, each read by `convert`."""

        def page_of(body: Any) -> tuple[list[T], bool]:
            pages = (body.get("links") or {}).get("pages") or {}
            return [convert(item) for item in body[key]], bool(pages.get("next"))

        items: list[T] = []
        page = 1
        while True:
            batch, more = self._read(operation, method, page_of, page=page, per_page=PAGE_SIZE, **params)
            items += batch
            if not more:
                return items
            page += 1

    def _read(self, operation: str, method: Callable[..., Any], read: Callable[[Any], T] = lambda body: body, missing_ok: bool = False, **params: Any) -> T:
        """`_call`, retried while transient."""
        return self._retry.call(lambda: self._call(operation, method, read, missing_ok, **params))

    def _call(self, operation: str, method: Callable[..., Any], read: Callable[[Any], T] = lambda body: body, missing_ok: bool = False, **params: Any) -> T:
        """Call pydo once and return `read(body)` of its 2xx reply (None for a 404 with
        `missing_ok`). Raise ProviderError for any failure: a refusal DigitalOcean states, with
        its status; anything that came back but could not be understood as UncertainOutcome."""
        self._last.status = None
        try:
            status, body = method(**params, cls=lambda response, body, headers: (response.http_response.status_code, body))
        except HttpResponseError as error:
            response = error.response
            headers = response.headers if response is not None else {}
            raise self._refusal(operation, error.status_code, _json(response), error.reason, advised_wait(headers)) from None
        except AzureError as error:
            raise ProviderError(self.name, operation, None, type(error).__name__ + ": " + str(error.message)) from None
        except Exception as error:  # pydo could not read the reply (not JSON, a header of the wrong type)
            raise unreadable(self.name, operation, self._last.status, error) from None
        if missing_ok and status == 404 and _is_error(body):
            return None  # type: ignore[return-value]
        if not 200 <= status < 300:
            raise self._refusal(operation, status, body, None, None)
        try:
            return read(body)
        except Exception as error:  # a reply without what the operation returns
            raise unreadable(self.name, operation, status, error) from None

    def _refusal(self, operation: str, status: int | None, body: Any, reason: str | None, wait: float | None) -> ProviderError:
        """The error for a non-2xx reply: certain only when it is a 4xx with DigitalOcean's
        error body; a temporary status is retried; anything else was not understood."""
        failure = ProviderError(self.name, operation, status, _message(body, reason), wait)
        if failure.transient or (status is not None and 400 <= status < 500 and _is_error(body)):
            return failure
        if status is not None and 200 <= status < 300:
            return unreadable(self.name, operation, status, "its body could not be read")
        return unreadable(self.name, operation, status, f"an HTTP {status} without DigitalOcean's error body")


def _is_error(body: Any) -> bool:
    """True for DigitalOcean's error body, `{"id": ..., "message": ...}`."""
    return isinstance(body, dict) and isinstance(body.get("id"), str) and isinstance(body.get("message"), str)


def _json(response: Any) -> Any:
    try:
        return response.json()
    except Exception:  # noqa: BLE001 - any body that is not JSON (or no response at all)
        return None


def _message(body: Any, fallback: str | None) -> str:
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return fallback or "no message"


def _server(droplet: dict[str, Any]) -> Server:
    return Server(str(droplet["id"]), str(droplet["name"]), {str(tag): "" for tag in droplet.get("tags") or []})


def _action(item: dict[str, Any]) -> tuple[Any, int, str]:
    """(type, id, status) of an action; the API's description makes status default to in-progress."""
    return item.get("type"), int(item["id"]), str(item.get("status", "in-progress"))


def _action_status(action: dict[str, Any]) -> str:
    """An action's status, one of those the API documents; ValueError for any other."""
    status = action.get("status", "in-progress")
    if status not in ("in-progress", "completed", "errored"):
        raise ValueError(f"action status {status!r} is none of in-progress, completed, errored")
    return status


def _snapshot(item: dict[str, Any]) -> CloudSnapshot:
    return CloudSnapshot(
        id=str(item["id"]),
        name=item["name"],
        created=_time(item["created_at"]),
        server_id=str(item["resource_id"]) if item.get("resource_id") is not None else None,
        labels={tag: "" for tag in item.get("tags") or []},
    )


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)  # RFC 3339 wants an offset
