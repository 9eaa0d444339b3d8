"""Hetzner Cloud through hcloud: servers, snapshot images with our labels, create_image.

hcloud's own retries are switched off: it repeats any request after a timeout, POSTs
included, so a create_image whose reply was lost could make a second snapshot. RetryPolicy
repeats reads and deletes; a create is re-checked by listing before it is ever repeated.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import hcloud
import requests
from hcloud.images import Image
from hcloud.servers import Server as HcloudServer

from snapshot_policy import __version__
from snapshot_policy.model import HETZNER, ProviderError, Server, Target
from snapshot_policy.providers.ownership import MANAGED_BY_LABEL, MANAGED_BY_VALUE, SERVER_ID_LABEL, CloudSnapshot, hetzner_labels
from snapshot_policy.providers.retry import RetryPolicy, Timing

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
        self._client._client._session.hooks["response"].append(self._count)  # requests' own hook API
        self.requests = 0
        self._timing = timing
        self._retry = retry

    def _count(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        self.requests += 1  # every HTTP exchange, for the metrics file

    def servers(self, selector: str | None = None) -> list[Server]:
        filters = {"label_selector": selector} if selector else {}
        return [_server(s) for s in self._read("list servers", lambda: self._client.servers.get_all(**filters))]

    def snapshots(self) -> list[CloudSnapshot]:
        # Not `status=`: hcloud 2.27 sends the page size in its place.
        return [_snapshot(i) for i in self._read("list snapshots", lambda: self._client.images.get_all(type=["snapshot"]))]

    def create_snapshot(self, target: Target, name: str) -> CloudSnapshot:
        image_id, action_id = self._start_snapshot(target, name)
        if action_id is not None:
            action = self._wait(f"snapshot {name}", lambda: self._finished_action(action_id))
            if action.status == "error":
                message = (action.error or {}).get("message", "no message")
                raise ProviderError(self.name, "wait for snapshot", None, f"create_image action {action_id} failed: {message}", code="action_failed")
        image = self._wait(f"snapshot {name}", lambda: self._finished_image(image_id))
        return _snapshot(image)

    def mark_snapshot(self, target: Target, snapshot_id: str) -> None:
        image = self._read("get snapshot", lambda: self._client.images.get_by_id(int(snapshot_id)))
        labels = {**(image.labels or {}), **hetzner_labels(target)}  # an update replaces the whole set
        self._read("label snapshot", lambda: self._client.images.update(image, labels=labels))

    def delete_snapshot(self, snapshot_id: str) -> None:
        try:
            self._read("delete snapshot", lambda: self._client.images.delete(Image(id=int(snapshot_id))))
        except ProviderError as error:
            if error.status != 404:  # gone already is what was asked for
                raise

    def _start_snapshot(self, target: Target, name: str) -> tuple[int, int | None]:
        """Start create_image and return (image id, action id); after a lost reply, an image
        with our labels and this exact name is taken as the one this request started (its
        action id is then unknown). A locked server is asked again until the timeout."""
        server = HcloudServer(id=int(target.server_id))

        def start() -> tuple[int, int | None]:
            labels = hetzner_labels(target)
            reply = self._call("start snapshot", lambda: self._client.servers.create_image(server, description=name, type="snapshot", labels=labels))
            return reply.image.id, reply.action.id

        def started_meanwhile() -> tuple[int, int | None] | None:
            found = self._image_named(target, name)
            return None if found is None else (found, None)

        return self._retry.start_once(
            start, started_meanwhile, lambda error: error.code == LOCKED, self._timing.creation_timeout, self._timing.poll_interval
        )

    def _image_named(self, target: Target, name: str) -> int | None:
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{SERVER_ID_LABEL}={target.server_id}"
        images = self._read("list snapshots", lambda: self._client.images.get_all(type=["snapshot"], label_selector=selector))
        return next((i.id for i in images if i.description == name), None)

    def _finished_action(self, action_id: int):
        action = self._read("get action", lambda: self._client.actions.get_by_id(action_id))
        return None if action.status == "running" else action

    def _finished_image(self, image_id: int):
        image = self._read("get snapshot", lambda: self._client.images.get_by_id(image_id))
        return None if image.status == "creating" else image

    def _wait(self, what: str, probe: Callable[[], T | None]) -> T:
        try:
            return self._retry.poll(probe, self._timing.creation_timeout, self._timing.poll_interval, what)
        except TimeoutError as error:
            raise ProviderError(self.name, "wait for snapshot", None, str(error)) from None

    def _read(self, operation: str, call: Callable[[], T]) -> T:
        return self._retry.call(lambda: self._call(operation, call))

    def _call(self, operation: str, call: Callable[[], T]) -> T:
        """Call hcloud once. Raise ProviderError, with the HTTP status and Hetzner's code, for any failure."""
        try:
            return call()
        except hcloud.APIException as error:
            code = error.code
            status = code if isinstance(code, int) else _STATUS_OF_CODE.get(code)
            raise ProviderError(self.name, operation, status, str(error.message), code=str(code)) from None
        except requests.RequestException as error:
            raise ProviderError(self.name, operation, None, type(error).__name__) from None


def _server(server) -> Server:
    return Server(str(server.id), server.name, dict(server.labels or {}))


def _snapshot(image) -> CloudSnapshot:
    source = image.created_from
    return CloudSnapshot(
        id=str(image.id),
        name=image.description or "",
        created=image.created,
        server_id=str(source.id) if source is not None else None,
        labels=dict(image.labels or {}),
        protected=bool((image.protection or {}).get("delete")),
        creating=image.status == "creating",
    )
