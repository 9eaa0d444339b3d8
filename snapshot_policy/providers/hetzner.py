"""Hetzner Cloud through hcloud: servers, snapshot images with our labels, create_image.

hcloud's own retries are switched off: it repeats any request after a timeout, POSTs
included, so a create_image whose reply was lost could make a second snapshot. RetryPolicy
repeats reads and deletes; a create is re-checked by listing before it is ever repeated.

hcloud parses replies into its models inside each call and raises whatever that parsing
raises (TypeError, IndexError, KeyError...) on data the API's description allows but the SDK
does not expect. So every call, with the reading of what it returns, runs inside `_call`,
which turns any failure into a ProviderError. Rate-limit headers reach us only through a
response hook: APIException does not carry the response.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import timezone
from typing import TypeVar

import hcloud
import requests
from hcloud.images import Image
from hcloud.servers import Server as HcloudServer

from snapshot_policy import __version__
from snapshot_policy.model import HETZNER, START_SNAPSHOT, CloudSnapshot, ProviderError, Server
from snapshot_policy.ownership import MANAGED_BY_LABEL, MANAGED_BY_VALUE, SERVER_ID_LABEL
from snapshot_policy.providers.retry import RetryPolicy, Timing, advised_wait, timed_out, unreadable

T = TypeVar("T")

# Hetzner names its errors; these are the HTTP statuses its documentation gives them.
_STATUS_OF_CODE = {
    "json_error": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "maintenance": 403,
    "resource_limit_exceeded": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "uniqueness_error": 409,
    "conflict": 409,
    "resource_unavailable": 412,
    "invalid_input": 422,
    "service_error": 422,
    "unsupported_error": 422,
    "locked": 423,
    "protected": 423,
    "rate_limit_exceeded": 429,
    "server_error": 500,
    "bad_gateway": 502,
    "unavailable": 503,
    "timeout": 504,
}
LOCKED = "locked"


class Hetzner:
    name = HETZNER

    def __init__(self, token: str, endpoint: str, timing: Timing, retry: RetryPolicy):
        self._client = hcloud.Client(
            token,
            api_endpoint=endpoint,
            application_name="snapshot-policy",
            application_version=__version__,
            timeout=timing.request_timeout,
        )
        self._client._client._retry_max_retries = 0  # no public option; see the module docstring
        self._client._client._session.hooks["response"].append(self._seen)  # requests' own hook API
        self._last = threading.local()  # this thread's latest response, for _call
        self.requests = 0
        self._timing = timing
        self._retry = retry

    def _seen(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self.requests += 1  # every HTTP exchange, for the metrics file
        self._last.response = response

    def servers(self, selector: str | None = None) -> list[Server]:
        filters = {"label_selector": selector} if selector else {}
        return self._read("list servers", lambda: [_server(s) for s in self._client.servers.get_all(**filters)])

    def snapshots(self) -> list[CloudSnapshot]:
        # Not `status=`: hcloud 2.27 sends the page size in its place.
        return self._read("list snapshots", lambda: [_snapshot(i) for i in self._client.images.get_all(type=["snapshot"])])

    def create_snapshot(self, server_id: str, name: str, labels: Mapping[str, str]) -> CloudSnapshot:
        image_id, action_id = self._start_snapshot(server_id, name, labels)
        if action_id is not None:
            status, message = self._wait(f"snapshot {name}", lambda: self._finished_action(action_id))
            if status == "error":
                raise ProviderError(self.name, "wait for snapshot", None, f"create_image action {action_id} failed: {message}", code="action_failed")
        return self._wait(f"snapshot {name}", lambda: self._finished_image(image_id))

    def mark_snapshot(self, snapshot_id: str, labels: Mapping[str, str]) -> None:
        image_id = int(snapshot_id)
        merged = self._read("get snapshot", lambda: dict(self._client.images.get_by_id(image_id).labels or {}))
        merged.update(labels)  # an update replaces the whole set
        self._read("label snapshot", lambda: self._client.images.update(Image(id=image_id), labels=merged))

    def delete_snapshot(self, snapshot_id: str) -> None:
        try:
            self._read("delete snapshot", lambda: self._client.images.delete(Image(id=int(snapshot_id))))
        except ProviderError as error:
            if error.code != "not_found":  # gone already is what was asked for
                raise

    def _start_snapshot(self, server_id: str, name: str, labels: Mapping[str, str]) -> tuple[int, int | None]:
        """Start create_image and return (image id, action id); after a lost reply, an image
        with our labels and this exact name is taken as the one this request started (its
        action id is then unknown). A locked server is asked again until the timeout."""
        server = HcloudServer(id=int(server_id))

        def start() -> tuple[int, int | None]:
            def post() -> tuple[int, int | None]:
                reply = self._client.servers.create_image(server, description=name, type="snapshot", labels=dict(labels))
                return int(reply.image.id), int(reply.action.id)

            return self._call(START_SNAPSHOT, post)

        def started_meanwhile() -> tuple[int, int | None] | None:
            found = self._image_named(server_id, name)
            return None if found is None else (found, None)

        return self._retry.start_once(
            start, started_meanwhile, lambda error: error.code == LOCKED, self._timing.creation_timeout, self._timing.poll_interval
        )

    def _image_named(self, server_id: str, name: str) -> int | None:
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{SERVER_ID_LABEL}={server_id}"

        def find() -> int | None:
            images = self._client.images.get_all(type=["snapshot"], label_selector=selector)
            return next((int(i.id) for i in images if i.description == name), None)

        return self._read("list snapshots", find)

    def _finished_action(self, action_id: int) -> tuple[str, str] | None:
        """(status, error message) once the action has ended, else None."""

        def get() -> tuple[str, str] | None:
            action = self._client.actions.get_by_id(action_id)
            if action.status == "running":
                return None
            if action.status not in ("success", "error"):
                raise ValueError(f"action status {action.status!r} is none of running, success, error")
            return action.status, str((action.error or {}).get("message") or "no message")

        return self._read("get action", get)

    def _finished_image(self, image_id: int) -> CloudSnapshot | None:
        def get() -> CloudSnapshot | None:
            image = self._client.images.get_by_id(image_id)
            return None if image.status == "creating" else _snapshot(image)

        return self._read("get snapshot", get)

    def _wait(self, what: str, probe: Callable[[], T | None]) -> T:
        try:
            return self._retry.poll(probe, self._timing.creation_timeout, self._timing.poll_interval, what)
        except TimeoutError:
            raise timed_out(self.name, what, self._timing.creation_timeout) from None

    def _read(self, operation: str, call: Callable[[], T]) -> T:
        return self._retry.call(lambda: self._call(operation, call))

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        """Return `call()` (hcloud once, and the reading of its result). Raise ProviderError for
        any failure: a refusal Hetzner states as such with its HTTP status and error code;
        anything else that came back but could not be understood as UncertainOutcome."""
        self._last.response = None
        try:
            return call()
        except hcloud.APIException as error:
            raise self._refusal(operation, error) from None
        except requests.RequestException as error:
            raise ProviderError(self.name, operation, None, type(error).__name__) from None
        except Exception as error:  # the SDK could not read the reply, or we could not read its models
            raise unreadable(self.name, operation, self._status(), error) from None

    def _status(self) -> int | None:
        response = getattr(self._last, "response", None)
        return None if response is None else response.status_code

    def _refusal(self, operation: str, error: hcloud.APIException) -> ProviderError:
        """The error for an APIException. A string code is Hetzner's own error body; an integer
        code means hcloud found none (it then carries the HTTP status), so only the status
        speaks: a temporary one is retried, any other reply is not understood — a 201 whose
        body did not parse included — and is never taken for a refusal."""
        response = getattr(self._last, "response", None)
        stated = isinstance(error.code, str)
        status = response.status_code if response is not None else (_STATUS_OF_CODE.get(error.code) if stated else error.code)
        wait = advised_wait(response.headers, spread_over_limit=True) if response is not None else None
        failure = ProviderError(self.name, operation, status, str(error.message), wait, code=str(error.code))
        if failure.transient or (stated and status is not None and 400 <= status < 500):
            return failure
        detail = "its body is not JSON" if error.__cause__ is not None else f"an HTTP {status} without Hetzner's error body"
        return unreadable(self.name, operation, status, detail)


def _server(server) -> Server:
    return Server(str(server.id), server.name, dict(server.labels or {}))


def _snapshot(image) -> CloudSnapshot:
    source = image.created_from
    return CloudSnapshot(
        id=str(image.id),
        name=image.description or "",
        created=image.created if image.created.tzinfo is not None else image.created.replace(tzinfo=timezone.utc),
        server_id=str(source.id) if source is not None else None,
        labels=dict(image.labels or {}),
        protected=bool((image.protection or {}).get("delete")),
        creating=image.status == "creating",
    )
