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

import ipaddress
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, TypeVar

import hcloud
import requests
from hcloud.core import Meta
from hcloud.images import Image
from hcloud.locations import Location
from hcloud.networks import Network
from hcloud.server_types import ServerType
from hcloud.servers import BoundServer, ServerCreatePublicNetwork
from hcloud.servers import Server as HcloudServer

from snapshot_policy import __version__
from snapshot_policy.core import ownership
from snapshot_policy.core.model import (
    HETZNER,
    START_SNAPSHOT,
    CloudSnapshot,
    MachineType,
    MadeServer,
    Price,
    ProviderError,
    RateLimit,
    Server,
    ServerRequest,
    StartedSnapshot,
)
from snapshot_policy.edges.providers import guard
from snapshot_policy.edges.providers.guard import CreateWatch
from snapshot_policy.edges.providers.paging import Listing, Page, read_all
from snapshot_policy.edges.providers.retry import (
    Refused,
    RetryPolicy,
    Timing,
    advised_wait,
    unreadable,
)

log = logging.getLogger(__name__)
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
NOT_FOUND = "not_found"
UNIQUENESS_ERROR = "uniqueness_error"
LIMIT_EXCEEDED = "resource_limit_exceeded"
# What a 403 resource_limit_exceeded means, by the request it answers, and what to do about it.
# Neither limit is in the API: they are the project's own.
SNAPSHOT_LIMIT = (
    "the project's snapshot limit is reached (Hetzner resource_limit_exceeded): "
    "delete snapshots, or ask Hetzner support to raise the limit"
)
SERVER_LIMIT = (
    "the project's server limit is reached (Hetzner resource_limit_exceeded): "
    "delete servers, or ask Hetzner support to raise the limit"
)
CREATE_SERVER = "create server"
# A server's status in our words (MadeServer.status); any other (deleting, migrating,
# rebuilding, unknown) is "starting": not running yet, not known to have failed.
STATUSES = {
    "initializing": "starting",
    "starting": "starting",
    "running": "running",
    "off": "off",
    "stopping": "off",
}
# Hetzner's prices are in euros; the net ones (without VAT), as settings.prices.
CURRENCY = "EUR"
# Action ids per `GET /actions?id=…` poll: one page of the answer (50 is the most a page holds;
# hcloud-python asks for 25, the default page). The answer is paginated all the same: its
# further pages are followed.
ACTIONS_PER_POLL = 50
# Newest first, so that an image made while the listing is read comes before the read position
# and shows (paging.py); the items are returned in id order all the same.
NEWEST_FIRST = ["id:desc"]
PER_PAGE = 50  # the most Hetzner's listings give a page
# The default project budget: 3,600 requests an hour, one back every second.
DEFAULT_LIMIT = 3600


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
        self._counting = threading.Lock()
        self.rate_limit = RateLimit(DEFAULT_LIMIT / 3600, DEFAULT_LIMIT)
        self.unsettled: list[str] = []
        self._timing = timing
        self._retry = retry
        self._watch = CreateWatch(  # Hetzner's words are CreateWatch's
            lambda ids: {action: status for action, (status, _) in self._statuses_of(ids).items()}
        )

    def _seen(self, response: requests.Response, *args: object, **kwargs: object) -> None:
        with self._counting:  # pages of a listing are read by several threads at once
            self.requests += 1  # every HTTP exchange, for the metrics file
        self._last.response = response
        limit, remaining = (
            response.headers.get("RateLimit-Limit", ""),
            response.headers.get("RateLimit-Remaining", ""),
        )
        if limit.isdigit() and remaining.isdigit() and int(limit):
            self.rate_limit = RateLimit(int(limit) / 3600, int(limit), int(remaining))

    def servers(self, selector: str | None = None) -> list[Server]:
        filters = {"label_selector": selector} if selector else {}
        listing = self._pages("list servers", self._server_page, _server, **filters)
        return self._settled(
            listing, f"server listing{f' (label selector {selector})' if selector else ''}"
        )

    def snapshots(self) -> list[CloudSnapshot]:
        # Not `status=`: hcloud 2.27 sends the page size in its place.
        return self._settled(
            self._pages(
                "list snapshots", self._client.images.get_list, _snapshot, type=["snapshot"]
            ),
            "snapshot listing",
        )

    def _settled(self, listing: Listing[T], what: str) -> list[T]:
        if not listing.settled:
            self.unsettled.append(
                f"Hetzner's {what} changed while it was read, each of the {listing.reads} times"
            )
        return listing.items

    def _server_page(self, **params: Any) -> tuple[list[_Listed], Meta | None]:
        """`servers.get_list`, which in hcloud 2.27 takes no `sort`; the same request and
        models, each with its location (the model keeps no `datacenter`)."""
        response = self._client.request(method="GET", url="/servers", params=params)
        return [self._bound(data) for data in response["servers"]], Meta.parse_meta(response)

    def _bound(self, data: dict[str, Any]) -> _Listed:
        region = _location_name(data)  # before the model takes `location` over
        return BoundServer(self._client.servers, data), region

    def _pages(
        self,
        operation: str,
        get_list: Callable[..., Any],
        convert: Callable[[Any], T],
        identity: Callable[[T], Any] = lambda item: item.id,
        **filters: Any,
    ) -> Listing[T]:
        """Every item of a paginated listing once, in id order, each read by `convert`: page
        by page through `get_list`, newest first, each page (with the reading of its items)
        under `_read`, several at a time once the first has named the last, read again while
        it shifts (paging.py)."""

        def read(page: int) -> Page[T]:
            def call() -> Page[T]:
                items, meta = get_list(page=page, per_page=PER_PAGE, sort=NEWEST_FIRST, **filters)
                pagination = meta.pagination if meta else None
                following, last, total = (
                    (pagination.next_page, pagination.last_page, pagination.total_entries)
                    if pagination
                    else (None, None, None)
                )
                return [convert(item) for item in items or []], following, last, total

            return self._read(operation, call)

        listing = read_all(read, identity)
        return replace(listing, items=listing.items[::-1])

    def busy_servers(self, since: datetime) -> dict[str, str]:
        """Return the servers with an action running, with its command ("snapshot" for
        create_image), from one listing of the project's running server actions (`since` is for
        DigitalOcean's unfiltered listing)."""

        def running() -> dict[str, str]:
            busy: dict[str, str] = {}
            for action in self._client.servers.actions.get_all(status=["running"]):
                kind = "snapshot" if action.command == "create_image" else str(action.command)
                for resource in action.resources or []:
                    if resource["type"] == "server":
                        busy.setdefault(str(resource["id"]), kind)
            return busy

        return self._read("list running actions", running)

    def start_snapshot(
        self, server_id: str, name: str, labels: Mapping[str, str]
    ) -> StartedSnapshot:
        image, action_id = self._start_snapshot(server_id, name, labels)
        return StartedSnapshot(server_id, name, action_id, image, dict(labels))

    def progress(
        self, started: Sequence[StartedSnapshot]
    ) -> dict[StartedSnapshot, CloudSnapshot | ProviderError | None]:
        """The actions' statuses, a page of ids in each request (`_statuses_of`); an image whose
        action is unknown (found after a lost reply, or an action Hetzner no longer has) is read
        itself. A successful create_image means its image is available: it is not read again."""
        result: dict[StartedSnapshot, CloudSnapshot | ProviderError | None] = {}
        by_action = {int(s.action_id): s for s in started if s.action_id}
        statuses = self._statuses_of(sorted(by_action))
        for action_id, snapshot in by_action.items():
            status, message = statuses.get(action_id, (None, ""))
            if status == "success":
                result[snapshot] = (
                    replace(snapshot.image, creating=False)
                    if snapshot.image
                    else self._image(snapshot)
                )
            elif status == "error":
                result[snapshot] = ProviderError(
                    self.name,
                    "wait for snapshot",
                    None,
                    f"create_image action {action_id} failed: {message}",
                    code="action_failed",
                    situation="",  # Hetzner answered: the action ended in error
                )
            elif status == "running":
                result[snapshot] = None
            else:  # the action is gone: its image says
                result[snapshot] = self._image_state(snapshot)
        for snapshot in started:
            if not snapshot.action_id:
                result[snapshot] = self._image_state(snapshot)
        return result

    def _statuses_of(self, action_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
        """(status, error message) of each action Hetzner has among `action_ids`: at most
        ACTIONS_PER_POLL ids a request, every page of each answer followed; an id a complete
        answer lacks is asked for on its own, and left out if Hetzner has no such action."""
        found: dict[int, tuple[str, str]] = {}
        for start in range(0, len(action_ids), ACTIONS_PER_POLL):
            chunk = list(action_ids[start : start + ACTIONS_PER_POLL])
            page: int | None = 1
            while page is not None:
                params = {"id": chunk, "page": page, "per_page": ACTIONS_PER_POLL}
                statuses, page = self._read(
                    "get actions",
                    lambda params=params: _statuses(
                        self._client.request("GET", "/actions", params=params)
                    ),
                )
                found.update(statuses)
        for action_id in action_ids:
            if action_id not in found:
                try:
                    found.update(
                        self._read(
                            "get action",
                            lambda action_id=action_id: _statuses(
                                {
                                    "actions": [
                                        self._client.request("GET", f"/actions/{action_id}")[
                                            "action"
                                        ]
                                    ]
                                }
                            )[0],
                        )
                    )
                except ProviderError as error:
                    if error.code != NOT_FOUND:
                        raise
        return found

    def _image_state(self, snapshot: StartedSnapshot) -> CloudSnapshot | ProviderError | None:
        """The image itself: None while it is made, its error if Hetzner no longer has it."""
        try:
            image = self._image(snapshot)
        except ProviderError as error:
            if error.code != NOT_FOUND:
                raise
            return error
        return None if image.creating else image

    # -- power (consistency: shutdown, docs/promises.md §5.17) ---------------------------------

    def shutdown_server(self, server_id: str) -> None:
        self._call(
            "shut down server",
            lambda: self._client.servers.shutdown(HcloudServer(id=int(server_id))),
        )

    def power_off_server(self, server_id: str) -> None:
        self._call(
            "power off server",
            lambda: self._client.servers.power_off(HcloudServer(id=int(server_id))),
        )

    def power_on_server(self, server_id: str) -> None:
        self._call(
            "power on server",
            lambda: self._client.servers.power_on(HcloudServer(id=int(server_id))),
        )

    def mark_snapshot(self, snapshot_id: str, labels: Mapping[str, str]) -> None:
        image_id = int(snapshot_id)
        merged = self._labels_now(image_id)
        merged.update(labels)  # an update replaces the whole set
        self._read(
            "label snapshot", lambda: self._client.images.update(Image(id=image_id), labels=merged)
        )

    def _labels_now(self, image_id: int) -> dict[str, str]:
        """Return an image's labels as the cloud has them now, to merge into before a PUT
        (which replaces them all). A reply without a labels object is garbled, not an image
        without labels: writing back what it lacks would wipe the marks that make it ours."""
        labels = self._read("get snapshot", lambda: self._client.images.get_by_id(image_id).labels)
        if not isinstance(labels, dict):
            raise ProviderError(
                self.name,
                "get snapshot",
                None,
                f"image {image_id} came back without its labels; they are left as they are",
                situation="a reply without labels",
            )
        return dict(labels)

    def get_snapshot(self, snapshot_id: str) -> CloudSnapshot | None:
        if not snapshot_id.isdigit():
            return None
        try:
            found = self._read(
                "get snapshot", lambda: _snapshot(self._client.images.get_by_id(int(snapshot_id)))
            )
        except ProviderError as error:
            if error.code == NOT_FOUND:
                return None
            raise
        return found

    def set_snapshot_labels(
        self, snapshot_id: str, add: Mapping[str, str], remove: Sequence[str]
    ) -> None:
        """Read the labels and write the merged set back (`PUT /images/{id}` replaces them
        all), as mark_snapshot does."""
        image_id = int(snapshot_id)
        merged = self._labels_now(image_id)
        merged = {k: v for k, v in merged.items() if k not in set(remove)}
        merged.update(add)
        self._read(
            "label snapshot", lambda: self._client.images.update(Image(id=image_id), labels=merged)
        )

    def protect_snapshot(self, snapshot_id: str, on: bool) -> None:
        """`POST /images/{id}/actions/change_protection {"delete": on}`; the action is done
        within the request on Hetzner's side, its reply's status is checked."""

        def change() -> tuple[str, str]:
            action = self._client.images.change_protection(Image(id=int(snapshot_id)), delete=on)
            return str(action.status), str((action.error or {}).get("message") or "")

        status, message = self._read("protect snapshot", change)
        if status == "error":
            raise ProviderError(
                self.name,
                "protect snapshot",
                None,
                message or "the action failed",
                code="action_failed",
                situation="",
            )

    def delete_snapshot(self, snapshot_id: str) -> None:
        try:
            self._read(
                "delete snapshot", lambda: self._client.images.delete(Image(id=int(snapshot_id)))
            )
        except ProviderError as error:
            if error.code != NOT_FOUND:  # gone already is what was asked for
                raise

    # -- copies in other regions: none on Hetzner (docs/promises.md §5.15) -------------------

    def transfer_snapshot(self, snapshot_id: str, region: str) -> str:
        """Hetzner's snapshots are global and it has no API to copy one: validate refuses
        `copies` on a Hetzner target, so this is never asked for."""
        raise ProviderError(
            self.name,
            "transfer snapshot",
            None,
            "Hetzner has no API to copy a snapshot to another location",
            situation="",
        )

    def transfers(self, snapshot_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        return {}

    # -- servers made from snapshots (restore drills, restore) ---------------------------------

    def machine_types(self) -> list[MachineType]:
        def type_page(**params: Any) -> tuple[list[dict[str, Any]], Meta | None]:
            params.pop("sort", None)  # server types take no order
            response = self._client.request(method="GET", url="/server_types", params=params)
            return list(response["server_types"]), Meta.parse_meta(response)

        return self._pages(
            "list server types", type_page, _server_type, lambda kind: kind.name
        ).items

    def prices(self) -> Price:
        """`GET /v1/pricing`: what a GB of snapshot images costs a month, net of VAT (the
        gross adds the project owner's VAT, which differs by country), in the project's
        currency. hcloud 2.27 has no pricing client: its generic request, as for server types.
        Raise ProviderError when the reply cannot be read."""

        def read() -> Price:
            pricing = self._client.request(method="GET", url="/pricing")["pricing"]
            net = float(pricing["image"]["price_per_gb_month"]["net"])
            currency = str(pricing["currency"]).upper()
            if not (net >= 0 and len(currency) == 3 and currency.isalpha()):
                raise ValueError(f"an image price of {net} {currency!r}")
            return Price(net, currency)

        # Once, not retried: a plan falls back to the default rather than wait for a price.
        return self._call("read prices", read)

    def create_server(self, request: ServerRequest) -> MadeServer:
        """`POST /v1/servers`, never repeated by hcloud; after a lost reply the server is looked
        for by its name, and the create repeated only when none has it: Hetzner refuses a
        second server of one name (409 uniqueness_error), so a repeat cannot make two."""

        def post() -> MadeServer:
            reply = self._client.servers.create(
                request.name,
                server_type=ServerType(name=request.machine_type),
                image=Image(id=image_id),
                location=Location(name=request.region),
                labels=dict(request.labels),
                start_after_create=True,
                # Hetzner refuses a server with no network at all: without a private
                # network, a public IPv6 (free, unlike an IPv4) is the least it allows.
                public_net=ServerCreatePublicNetwork(
                    enable_ipv4=request.public_network,
                    enable_ipv6=request.public_network or not networks,
                ),
                networks=[Network(id=network) for network in networks] or None,
            )
            made = _made((reply.server, None))
            actions = [int(reply.action.id)] + [int(a.id) for a in reply.next_actions or []]
            self._watch.watch(made.id, actions)
            return made

        def create() -> MadeServer:
            try:
                return self._call(CREATE_SERVER, post)
            except ProviderError as error:
                raise _limit_reached(error, SERVER_LIMIT) from None

        networks = _network_ids(request)
        image_id = guard.image_id(self.name, CREATE_SERVER, request)
        return self._retry.create_once(
            create,
            lambda: self._made_named(request),
            name_taken=lambda error: error.code == UNIQUENESS_ERROR,
            unique_names=True,
        )

    def _made_named(self, request: ServerRequest) -> MadeServer | None:
        """The server named `request.name`, if it carries every label of the request."""
        servers = self._pages("list servers", self._server_page, _made, name=request.name).items
        return next(
            (
                server
                for server in servers
                if server.name == request.name
                and all(server.labels.get(k) == v for k, v in request.labels.items())
            ),
            None,
        )

    def drill_servers(self) -> list[MadeServer]:
        listing = self._pages(
            "list drill servers", self._server_page, _made, label_selector=ownership.DRILL_LABEL
        )
        return self._watch.marked(guard.drill_listing(self.name, "list drill servers", listing))

    def get_server(self, server_id: str) -> MadeServer | None:
        made = self._read_server(server_id)
        return None if made is None else self._watch.marked([made])[0]

    def _read_server(self, server_id: str) -> MadeServer | None:
        """`GET /v1/servers/{id}`: the server as it is now, None when there is none."""

        number = guard.server_number(self.name, "get server", server_id)

        def get() -> MadeServer:
            reply = self._client.request(method="GET", url=f"/servers/{number}")
            return _made(self._bound(reply["server"]))

        try:
            return self._read("get server", get)
        except ProviderError as error:
            if error.code != NOT_FOUND:
                raise
            return None

    def delete_drill_server(self, server: MadeServer, owner: str) -> None:
        def delete(server_id: str) -> None:
            number = guard.server_number(self.name, "delete server", server_id)
            try:
                self._read(
                    "delete server",
                    lambda: self._client.servers.delete(HcloudServer(id=number)),
                )
            except ProviderError as error:
                if error.code != NOT_FOUND:  # gone already is what was asked for
                    raise

        def attempt() -> None:  # read again at every try
            guard.delete_drill_server(self.name, server, owner, self._read_server, delete)

        # 423 `locked`: an action (its create, its start) still runs on the server, which is
        # the rule right after a boot timeout or a stop: asked again once the lock is gone.
        self._retry.backoff.run(
            attempt,
            retryable=lambda error: isinstance(error, ProviderError) and error.code == LOCKED,
            advised=lambda error: None,
        )
        self._watch.forget(server.id)

    def _start_snapshot(
        self, server_id: str, name: str, labels: Mapping[str, str]
    ) -> tuple[CloudSnapshot | None, str | None]:
        """Start create_image and return (image, action id); after a lost reply, an image
        with our labels and this exact name is taken as the one this request started (its
        action id is then unknown, and it is read again). A locked server is asked again until
        the timeout."""
        server = HcloudServer(id=int(server_id))

        def start() -> tuple[CloudSnapshot | None, str | None]:
            def post() -> tuple[CloudSnapshot | None, str | None]:
                reply = self._client.servers.create_image(
                    server, description=name, type="snapshot", labels=dict(labels)
                )
                return _snapshot(reply.image), str(int(reply.action.id))

            try:
                return self._call(START_SNAPSHOT, post)
            except ProviderError as error:
                raise _limit_reached(error, SNAPSHOT_LIMIT) from None

        def started_meanwhile() -> tuple[CloudSnapshot | None, str | None] | None:
            found = self._image_named(labels, name)
            return (
                None
                if found is None
                else (
                    CloudSnapshot(
                        str(found), name, datetime.min.replace(tzinfo=timezone.utc), server_id
                    ),
                    None,
                )
            )

        return self._retry.start_once(
            start,
            started_meanwhile,
            lambda error: error.code == LOCKED,
            self._timing.creation_timeout,
        )

    def _image_named(self, labels: Mapping[str, str], name: str) -> int | None:
        """The id of the snapshot named `name` that carries all of `labels` (those its start
        was sent with), or None. A label with an empty value is left out of the selector."""
        selector = ",".join(f"{key}={value}" for key, value in labels.items() if value)

        def find() -> int | None:
            images = self._client.images.get_all(type=["snapshot"], label_selector=selector)
            return next((int(i.id) for i in images if i.description == name), None)

        return self._read("list snapshots", find)

    def _image(self, snapshot: StartedSnapshot) -> CloudSnapshot:
        image_id = int(snapshot.image.id) if snapshot.image else 0
        return self._read(
            "get snapshot", lambda: _snapshot(self._client.images.get_by_id(image_id))
        )

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
        except (
            Exception
        ) as error:  # the SDK could not read the reply, or we could not read its models
            status, request_id = self._status(), self._correlation_id()
            raise unreadable(self.name, operation, status, error, request_id) from None

    def _status(self) -> int | None:
        response = getattr(self._last, "response", None)
        return None if response is None else response.status_code

    def _correlation_id(self) -> str | None:
        """Hetzner's name for the latest request, from its reply (hcloud reads the same header
        into APIException.correlation_id)."""
        response = getattr(self._last, "response", None)
        return None if response is None else response.headers.get("X-Correlation-Id")

    def _refusal(self, operation: str, error: hcloud.APIException) -> ProviderError:
        """The error for an APIException. A string code is Hetzner's own error body; an integer
        code means hcloud found none (it then carries the HTTP status), so only the status
        speaks: a temporary one is retried, any other reply is not understood — a 201 whose
        body did not parse included — and is never taken for a refusal."""
        response = getattr(self._last, "response", None)
        stated = isinstance(error.code, str)
        status = (
            response.status_code
            if response is not None
            else (_STATUS_OF_CODE.get(error.code) if stated else error.code)
        )
        wait = (
            advised_wait(response.headers, spread_over_limit=True) if response is not None else None
        )
        request_id = error.correlation_id
        failure = ProviderError(
            self.name,
            operation,
            status,
            str(error.message),
            wait,
            str(error.code),
            request_id,
            # Hetzner answered with its error body, whose HTTP status was not kept.
            situation=None if status is not None else f"Hetzner error {error.code}",
        )
        if failure.transient or (stated and status is not None and 400 <= status < 500):
            return failure
        detail = (
            "its body is not JSON"
            if error.__cause__ is not None
            else f"an HTTP {status} without Hetzner's error body"
        )
        return unreadable(self.name, operation, status, detail, request_id)


def _statuses(reply: dict) -> tuple[dict[int, tuple[str, str]], int | None]:
    """(status, error message) of each action in a `GET /actions` reply, and its next page
    (None: the last, or a reply without pagination); ValueError for a status the API does not
    document."""
    found = {}
    for action in reply["actions"]:
        if action["status"] not in ("running", "success", "error"):
            raise ValueError(
                f"action status {action['status']!r} is none of running, success, error"
            )
        found[int(action["id"])] = (
            action["status"],
            str((action.get("error") or {}).get("message") or "no message"),
        )
    following = ((reply.get("meta") or {}).get("pagination") or {}).get("next_page")
    return found, following if type(following) is int else None


_Listed = tuple[BoundServer, "str | None"]
"""A listed server's model, with its location's name as its raw data said."""


def _location_name(data: dict[str, Any]) -> str | None:
    """`location.name`, else `datacenter.location.name` (older replies)."""
    for holder in (data, data.get("datacenter")):
        location = holder.get("location") if isinstance(holder, dict) else None
        name = location.get("name") if isinstance(location, dict) else None
        if isinstance(name, str) and name:
            return name
    return None


def _server(listed: _Listed) -> Server:
    server, region = listed
    status = server.status if isinstance(server.status, str) else None
    return Server(
        str(server.id), server.name, dict(server.labels or {}), region=region, status=status
    )


def _made(listed: _Listed) -> MadeServer:
    """A server in our words: its status mapped (STATUSES), its first private address, its
    public IPv4, else the first address of its IPv6 network (Hetzner's convention, ::1)."""
    server, region = listed
    if region is None and server.location is not None:
        region = server.location.name
    public = server.public_net
    public_ip = None
    if public is not None and public.ipv4 is not None and public.ipv4.ip:
        public_ip = str(public.ipv4.ip)
    elif public is not None and public.ipv6 is not None and public.ipv6.ip:
        network = ipaddress.ip_network(str(public.ipv6.ip), strict=False)
        public_ip = (
            str(network.network_address + 1)
            if network.num_addresses > 1
            else str(network.network_address)
        )
    private_ip = next((str(net.ip) for net in server.private_net or [] if net.ip), None)
    created = server.created
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return MadeServer(
        id=str(int(server.id)),
        name=str(server.name),
        status=STATUSES.get(str(server.status), "starting"),
        region=region,
        labels=dict(server.labels or {}),
        private_ip=private_ip,
        public_ip=public_ip,
        image_id=None if server.image is None else str(server.image.id),
        created=created,
    )


def _server_type(raw: dict[str, Any]) -> MachineType:
    """A server type of `GET /v1/server_types`: where it can be made now (priced, and neither
    unavailable nor deprecated there) and the highest net hourly price among those places,
    an upper estimate of what a drill costs wherever it runs."""
    prices = {
        str(price["location"]): float(price["price_hourly"]["net"]) for price in raw["prices"]
    }
    locations = raw.get("locations")
    if isinstance(locations, list):
        usable = {
            str(location["name"])
            for location in locations
            if location.get("available", True) is not False and not location.get("deprecation")
        }
    else:  # an older reply: where it has a price
        usable = set(prices)
    regions = tuple(sorted(location for location in prices if location in usable))
    deprecated = bool(raw.get("deprecated")) or bool(raw.get("deprecation"))
    return MachineType(
        name=str(raw["name"]),
        disk_gb=float(raw["disk"]),
        regions=regions,
        price_hourly=max((prices[r] for r in regions), default=max(prices.values(), default=0.0)),
        currency=CURRENCY,
        architecture=str(raw.get("architecture") or "x86"),
        available=not deprecated,
    )


def _network_ids(request: ServerRequest) -> list[int]:
    """The networks to attach, by id (what Hetzner's create takes). A name is refused before
    anything is sent: `hcloud network list` shows the ids."""
    ids = []
    for network in request.networks:
        if not str(network).isdigit():
            raise Refused(
                HETZNER,
                CREATE_SERVER,
                f"network {network!r} is not a network id: give its number "
                "(`hcloud network list` shows them)",
                "invalid_network",
            )
        ids.append(int(network))
    return ids


def _limit_reached(error: ProviderError, meaning: str) -> ProviderError:
    """`error`, its message saying what Hetzner's 403 resource_limit_exceeded means here."""
    if error.code != LIMIT_EXCEEDED:
        return error
    return ProviderError(
        error.provider,
        error.operation,
        error.status,
        meaning,
        error.retry_after,
        error.code,
        error.request_id,
    )


def _snapshot(image) -> CloudSnapshot:
    source = image.created_from
    return CloudSnapshot(
        id=str(image.id),
        name=image.description or "",
        created=image.created
        if image.created.tzinfo is not None
        else image.created.replace(tzinfo=timezone.utc),
        server_id=str(source.id) if source is not None else None,
        labels=dict(image.labels or {}),
        protected=bool((image.protection or {}).get("delete")),
        creating=image.status == "creating",
        # what is billed; null while the image is made (disk_size is the server's disk)
        size_gb=image.image_size,
        min_disk_gb=None if image.disk_size is None else float(image.disk_size),
        architecture=image.architecture,
    )
