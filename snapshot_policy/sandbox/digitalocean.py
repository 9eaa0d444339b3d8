"""DigitalOcean API v2 as the fake serves it: the droplet, snapshot, action and tag endpoints.

Objects are shaped after the examples in the official OpenAPI description
(`digitalocean-v2.bundled.yaml`: `droplet_single`, `snapshots_droplets_only`, `action`,
`tags_new`) with the fields that matter taken from the state, so responses validate against
its schemas. Conventions: errors `{"id", "message"}`; `ratelimit-*` headers on every
response and `retry-after` on 429 (the hourly budget, or the account's optional per-minute
`burst_limit`); `links.pages` with absolute URLs plus `meta.total`, `per_page` at most 200;
action listings newest first (the account's oldest first with `State.actions_oldest_first`:
the API's description does not say). A droplet with an action in progress answers 422 to a new
action (the real API's "pending event"); besides snapshots, the actions of `OTHER_ACTIONS` run
(changing nothing) to make a droplet busy. Protection does not exist on DigitalOcean and is
ignored.

Droplets made from snapshots (`POST /v2/droplets`, 202 with the droplet, `new`, and its
`create` action in `links.actions`) boot for the account's `boot_seconds`, then are `active`
(`off` when a `boot_fail` fault made the create action end `errored`); `DELETE
/v2/droplets/{id}` removes one at once (204); so does `DELETE /v2/droplets?tag_name=` for
every droplet with the tag, as on DigitalOcean. `GET /v2/sizes` lists the catalogue
(catalogue.py). A create is refused with 422 as the API refuses it: an unknown or unavailable
size, an image that is not the account's snapshot (or the one base image slug), a region the
snapshot is not in or the size is not offered in, a size whose disk is smaller than the
snapshot's `min_disk_size`, `ipv6` without public networking, `names` (one Droplet a request
here). Duplicate names are allowed, as on DigitalOcean. Every droplet has a private (VPC)
address; a public IPv4 unless `public_networking: false`; a public IPv6 with `ipv6: true`. An
account's `snapshot_limit` makes a snapshot action beyond it answer 422, its `server_limit` (the
droplet limit) a create beyond it.
"""

from __future__ import annotations

import itertools
import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import unquote

from .catalogue import DEFAULT_MACHINE_TYPE, SIZES, Size
from .faults import Fault
from .state import Account, Action, Server, Snapshot, State, VolumeSnapshot, format_time
from .wire import BadBody, Request, Response, page_bounds, positive_int

SIZE_SLUG = DEFAULT_MACHINE_TYPE["digitalocean"]
# DigitalOcean has no word for a guest shutting down: the droplet is active until it is off.
STATUSES = {"starting": "new", "running": "active", "off": "off", "stopping": "active"}
POWER_ACTIONS = ("shutdown", "power_off", "power_on")
DROPLET_NAME = re.compile(r"^[a-zA-Z0-9]?[a-z0-9A-Z.\-]*[a-z0-9A-Z]$")
BASE_IMAGE = {
    "id": 63663980,
    "name": "24.04 (LTS) x64",
    "distribution": "Ubuntu",
    "slug": "ubuntu-24-04-x64",
    "public": True,
    "regions": [],  # every region: filled in below
    "created_at": "2024-04-25T13:13:30Z",
    "type": "base",
    "min_disk_size": 7,
    "size_gigabytes": 2.36,
    "description": "Ubuntu 24.04 (LTS) x64",
    "tags": [],
    "status": "available",
    "error_message": "",
}
REGION_NAMES = {
    "ams3": "Amsterdam 3",
    "blr1": "Bangalore 1",
    "fra1": "Frankfurt 1",
    "lon1": "London 1",
    "nyc1": "New York 1",
    "nyc3": "New York 3",
    "sfo3": "San Francisco 3",
    "sgp1": "Singapore 1",
    "syd1": "Sydney 1",
    "tor1": "Toronto 1",
}
ERROR_IDS = {
    400: ("bad_request", "The request was invalid."),
    401: ("unauthorized", "Unable to authenticate you."),
    404: ("not_found", "The resource you requested could not be found."),
    422: ("unprocessable_entity", "The request could not be processed."),
    429: ("too_many_requests", "API rate limit exceeded."),
    500: ("server_error", "Unexpected server-side error"),
    502: ("server_error", "Bad gateway"),
    503: ("service_unavailable", "The service is temporarily unavailable."),
    504: ("server_error", "Gateway timeout"),
}
TAG_NAME = re.compile(r"^[a-zA-Z0-9_\-:]{1,255}$")
OTHER_ACTIONS = (
    "resize",
    "power_off",
    "power_on",
    "power_cycle",
    "reboot",
    "shutdown",
    "enable_backups",
)


def error(status: int, message: str | None = None) -> Response:
    error_id, default = ERROR_IDS.get(status, ("server_error", "Unexpected server-side error"))
    return Response(status, {"id": error_id, "message": message or default})


class DigitalOceanAPI:
    """Answers `/v2/...` requests against the shared state."""

    def __init__(
        self,
        state: State,
        action_fails: Callable[[str, int], bool],
        boot: Callable[[str, str], tuple[bool, float | None]] | None = None,
        transfer_fails: Callable[[str, str], bool] | None = None,
    ) -> None:
        self.state = state
        self._action_fails = action_fails
        self._transfer_fails = transfer_fails or (lambda service, region: False)
        self._boot = boot or (lambda service, name: (False, None))
        # Numbered, not random, so a run's failure messages read the same each time.
        self._request_ids = itertools.count(1)
        self._routes: list[tuple[str, re.Pattern, Callable]] = [
            ("GET", re.compile(r"/v2/droplets"), self._list_droplets),
            ("POST", re.compile(r"/v2/droplets"), self._create_droplet),
            ("DELETE", re.compile(r"/v2/droplets"), self._delete_by_tag),
            ("GET", re.compile(r"/v2/droplets/(\d+)"), self._get_droplet),
            ("DELETE", re.compile(r"/v2/droplets/(\d+)"), self._delete_droplet),
            ("GET", re.compile(r"/v2/sizes"), self._list_sizes),
            ("POST", re.compile(r"/v2/droplets/(\d+)/actions"), self._post_action),
            ("GET", re.compile(r"/v2/droplets/(\d+)/actions"), self._droplet_actions),
            ("GET", re.compile(r"/v2/droplets/(\d+)/snapshots"), self._droplet_snapshots),
            ("GET", re.compile(r"/v2/actions"), self._list_actions),
            ("GET", re.compile(r"/v2/actions/(\d+)"), self._get_action),
            ("GET", re.compile(r"/v2/snapshots"), self._list_snapshots),
            ("GET", re.compile(r"/v2/snapshots/([^/]+)"), self._get_snapshot),
            ("DELETE", re.compile(r"/v2/snapshots/([^/]+)"), self._delete_image),
            ("DELETE", re.compile(r"/v2/images/([^/]+)"), self._delete_image),
            ("POST", re.compile(r"/v2/images/(\d+)/actions"), self._post_image_action),
            ("GET", re.compile(r"/v2/images/(\d+)/actions"), self._image_actions),
            ("GET", re.compile(r"/v2/images/(\d+)/actions/(\d+)"), self._get_image_action),
            ("POST", re.compile(r"/v2/tags"), self._create_tag),
            ("POST", re.compile(r"/v2/tags/([^/]+)/resources"), self._tag_resources),
            ("DELETE", re.compile(r"/v2/tags/([^/]+)/resources"), self._untag_resources),
            ("GET", re.compile(r"/v2/volumes"), self._list_volumes),
            ("POST", re.compile(r"/v2/volumes/([^/]+)/snapshots"), self._create_volume_snapshot),
            ("GET", re.compile(r"/v2/volumes/([^/]+)/snapshots"), self._volume_snapshots),
        ]

    def handle(self, request: Request) -> Response:
        account = self.account(request)
        if account is None:
            return self._finish(error(401), None)
        if (retry_after := self.state.take_request(account)) is not None:
            return self._too_many(retry_after, account)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path.rstrip("/"))
            if match and method == request.method:
                try:
                    response = handler(request, account, *match.groups())
                except BadBody as exc:
                    response = error(422, str(exc))
                except ValueError as exc:
                    response = error(400, f"invalid parameter: {exc}")
                return self._finish(response, account)
        return self._finish(error(404), account)

    def account(self, request: Request) -> Account | None:
        token = request.bearer()
        return self.state.account_for_token("digitalocean", token) if token else None

    def fault_response(self, fault: Fault, account: Account | None) -> Response:
        if fault.kind == "rate_limit":
            return self._too_many(fault.retry_after, account)
        return self._finish(error(fault.status), account)

    def _too_many(self, retry_after: float, account: Account | None) -> Response:
        response = error(429)
        response.headers["retry-after"] = format(retry_after, "g")
        return self._finish(response, account)

    def _finish(self, response: Response, account: Account | None) -> Response:
        """Add the rate-limit and request id headers every DigitalOcean response carries; the
        usual error body (the API's "error" schema) names the request too, in `request_id`."""
        limit, remaining, reset = self.state.bucket(account, "digitalocean").status()
        request_id = str(uuid.UUID(int=next(self._request_ids)))
        response.headers.update(
            {
                "ratelimit-limit": str(limit),
                "ratelimit-remaining": str(0 if response.status == 429 else remaining),
                "ratelimit-reset": str(reset),
                "x-request-id": request_id,
            }
        )
        if response.status >= 400 and isinstance(response.body, dict) and "id" in response.body:
            response.body["request_id"] = request_id
        response.account = account.name if account else None
        return response

    # -- droplets --------------------------------------------------------------------------

    def _list_droplets(self, request: Request, account: Account) -> Response:
        tag, name = request.arg("tag_name"), request.arg("name")
        if tag and (name or request.arg("type")):
            return error(422, "tag_name cannot be combined with name or type")
        droplets = self.state.servers_of(account)
        if tag:
            droplets = [d for d in droplets if tag.lower() in (t.lower() for t in d.tags)]
        if name:
            droplets = [d for d in droplets if d.name.lower() == name.lower()]
        index = self.state.snapshot_ids_by_server(account)
        return self._page(
            request, "droplets", droplets, lambda d: self._droplet(d, index.get(d.id, []))
        )

    def _get_droplet(self, request: Request, account: Account, droplet_id: str) -> Response:
        server = self.state.server(account, int(droplet_id))
        if server is None:
            return error(404)
        index = self.state.snapshot_ids_by_server(account)
        return Response(200, {"droplet": self._droplet(server, index.get(server.id, []))})

    def _droplet(self, server: Server, snapshot_ids: list[int]) -> dict:
        window = self.state.clock().replace(hour=0, minute=0, second=0, microsecond=0)
        size = SIZES.get(server.machine_type, SIZES[SIZE_SLUG])
        return {
            "id": server.id,
            "name": server.name,
            "memory": size.memory,
            "vcpus": size.vcpus,
            "disk": size.disk,
            "disk_info": [{"type": "local", "size": {"amount": size.disk, "unit": "gib"}}],
            "locked": self.state.running_action(server.id) is not None,
            "status": STATUSES[server.status],
            "created_at": format_time(server.created),
            "features": ["private_networking", *(["ipv6"] if server.ipv6 else [])],
            "backup_ids": [],
            "next_backup_window": {
                "start": format_time(window + timedelta(days=1)),
                "end": format_time(window + timedelta(days=1, hours=23)),
            },
            "snapshot_ids": list(snapshot_ids),  # the index is kept by the state: not this reply's
            "image": self._droplet_image(server),
            "volume_ids": self.state.volume_ids_of(server),
            "size": _size(size),
            "size_slug": size.slug,
            "networks": _networks(server),
            "region": _region(server.region),
            "tags": list(server.tags),
            "vpc_uuid": "760e09ef-dc84-11e8-981e-3cfdfeaae000",
        }

    def _droplet_image(self, server: Server) -> dict:
        """The image it was made from: the base image for seeded droplets; a snapshot (marked
        `deleted` once it is gone, as the droplet still names it)."""
        if server.image_id is None:
            return {**BASE_IMAGE, "regions": sorted(REGION_NAMES)}
        snapshot = self.state.snapshots.get(server.image_id)
        return {
            "id": server.image_id,
            "name": snapshot.name if snapshot else "",
            "distribution": "Ubuntu",
            "slug": None,
            "public": False,
            "regions": [snapshot.region, *snapshot.copies] if snapshot else [],
            "created_at": format_time(snapshot.created if snapshot else server.created),
            "type": "snapshot",
            "min_disk_size": snapshot.min_disk_gb if snapshot else None,
            "size_gigabytes": snapshot.size_gigabytes if snapshot else None,
            "description": "",
            "tags": list(snapshot.tags) if snapshot else [],
            "status": "available" if snapshot else "deleted",
            "error_message": "",
        }

    def _create_droplet(self, request: Request, account: Account) -> Response:
        """`POST /v2/droplets`: one droplet from a snapshot (or the base image), refused as
        DigitalOcean refuses it (the module docstring); 202 with its `create` action."""
        body = request.json()
        made = self._droplet_request(body, account)
        if isinstance(made, Response):
            return made
        size, image, region = made
        if self.state.server_limit_reached(account):
            return error(
                422,
                (
                    "creating this/these droplet(s) will exceed your droplet limit "
                    f"({account.server_limit})"
                ),
            )
        name = body["name"]
        fails, seconds = self._boot("digitalocean", name)
        server, actions = self.state.create_server(
            account,
            name,
            machine_type=size.slug,
            region=region,
            image=image,
            tags=body.get("tags") or [],
            public_ipv4=body.get("public_networking", True),
            ipv6=bool(body.get("ipv6", False)),
            fails=fails,
            seconds=seconds,
        )
        links = [
            {"id": a.id, "rel": "create", "href": f"{request.base_url}/v2/actions/{a.id}"}
            for a in actions
        ]
        droplet = self._droplet(server, [])
        return Response(202, {"droplet": droplet, "links": {"actions": links}})

    def _droplet_request(
        self, body: dict, account: Account
    ) -> tuple[Size, Snapshot | None, str] | Response:
        """The size, image (None: the base image) and region a create asks for, or its 422."""
        if "names" in body:
            return error(422, "the sandbox creates one Droplet a request: send name, not names")
        name = body.get("name")
        if not isinstance(name, str) or len(name) > 255 or not DROPLET_NAME.match(name):
            return error(422, "Name is invalid: use letters, digits, dots and dashes.")
        for key in ("backups", "ipv6", "monitoring", "public_networking", "with_droplet_agent"):
            if key in body and not isinstance(body[key], bool):
                return error(422, f"{key} must be true or false")
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(
            isinstance(t, str) and TAG_NAME.match(t) for t in tags
        ):
            return error(422, "tags must be a list of tag names (letters, digits, : - _)")
        if body.get("public_networking") is False and body.get("ipv6"):
            return error(422, "ipv6 must be false when public_networking is false.")
        size = SIZES.get(body.get("size")) if isinstance(body.get("size"), str) else None
        if size is None:
            return error(422, "You specified an invalid size for Droplet creation.")
        wanted = body.get("image")
        image: Snapshot | None = None
        if isinstance(wanted, int) and not isinstance(wanted, bool):
            image = self.state.snapshot(account, wanted)
            if image is None or image.status != "available":
                return error(422, "You specified an invalid image for Droplet creation.")
        elif wanted != BASE_IMAGE["slug"]:
            return error(422, "You specified an invalid image for Droplet creation.")
        region = body.get("region")
        if region is None:
            region = image.region if image else (size.regions or ("nyc3",))[0]
        if not isinstance(region, str) or region not in REGION_NAMES:
            return error(422, "You specified an invalid region for Droplet creation.")
        if image is not None and region not in (image.region, *image.copies):
            return error(
                422,
                f"The image {image.id} is not available in {region}; it is in {image.region}.",
            )
        if not size.available or region not in size.regions:
            return error(422, f"The size {size.slug} is not available in {region}.")
        needed = image.min_disk_gb if image else BASE_IMAGE["min_disk_size"]
        if size.disk < needed:
            return error(
                422,
                (
                    f"The size {size.slug} has a {size.disk} GB disk; the image needs at "
                    f"least {needed} GB (its min_disk_size)."
                ),
            )
        return size, image, region

    def _delete_droplet(self, request: Request, account: Account, droplet_id: str) -> Response:
        """`DELETE /v2/droplets/{id}`: gone at once, booting or not; its snapshots stay."""
        server = self.state.server(account, int(droplet_id))
        if server is None:
            return error(404)
        self.state.delete_server(server)
        return Response(204)

    def _delete_by_tag(self, request: Request, account: Account) -> Response:
        """`DELETE /v2/droplets?tag_name=`: every droplet with the tag, as the real API does,
        so a tool that ever sends it is seen destroying servers (the tool must not: docs/
        promises.md). Without `tag_name`: 404, as there is no such route."""
        tag = request.arg("tag_name")
        if not tag:
            return error(404)
        for server in self.state.servers_of(account):
            if tag.lower() in (t.lower() for t in server.tags):
                self.state.delete_server(server)
        return Response(204)

    def _list_sizes(self, request: Request, account: Account) -> Response:
        return self._page(request, "sizes", list(SIZES.values()), _size)

    # -- actions ---------------------------------------------------------------------------

    def _post_action(self, request: Request, account: Account, droplet_id: str) -> Response:
        server = self.state.server(account, int(droplet_id))
        if server is None:
            return error(404)
        body = request.json()
        kind = body.get("type")
        if kind in POWER_ACTIONS:
            if self.state.running_action(server.id) is not None:
                return error(422, "Droplet already has a pending event.")
            fault = {"shutdown": "ignore_shutdown", "power_on": "fail_power_on"}.get(kind)
            hit = fault is not None and self._action_fails("digitalocean", server.id, fault)
            action = self.state.power_action(account, server, kind, kind, ignored=hit, fails=hit)
            return Response(201, {"action": _action(action, server.region)})
        if kind in OTHER_ACTIONS:
            if self.state.running_action(server.id) is not None:
                return error(422, "Droplet already has a pending event.")
            return Response(
                201,
                {"action": _action(self.state.start_action(account, server, kind), server.region)},
            )
        if kind != "snapshot":
            return error(
                422,
                (
                    f"the sandbox supports snapshot actions and {', '.join(OTHER_ACTIONS)}, "
                    f"not {kind!r}"
                ),
            )
        name = body.get("name")
        if name is not None and not (isinstance(name, str) and name.strip()):
            return error(422, "name must be a non-empty string")
        if self.state.running_action(server.id) is not None:
            return error(422, "Droplet already has a pending event.")
        limit = account.snapshot_limit
        if limit is not None and self.state.snapshot_count(account) >= limit:
            return error(
                422,
                (
                    f"You have reached the snapshot limit of your account ({limit}). Delete "
                    "snapshots, or contact support to raise the limit."
                ),
            )
        stamp = int(self.state.clock().timestamp() * 1000)
        action = self.state.start_snapshot(
            account,
            server,
            name or f"{server.name}-{stamp}",
            fails=self._action_fails("digitalocean", server.id),
        )
        return Response(201, {"action": _action(action, server.region)})

    def _droplet_actions(self, request: Request, account: Account, droplet_id: str) -> Response:
        server = self.state.server(account, int(droplet_id))
        if server is None:
            return error(404)
        actions = self.state.actions_of_server(account, server.id)
        return self._page(
            request, "actions", actions, lambda action: _action(action, server.region)
        )

    def _list_actions(self, request: Request, account: Account) -> Response:
        """Every action of the account, newest first, as the real listing orders them (oldest
        first if the state says so)."""
        actions = self.state.actions_of(account)
        if not self.state.actions_oldest_first:
            actions = actions[::-1]
        return self._page(request, "actions", actions, lambda a: _action(a, self._region_of(a)))

    def _get_action(self, request: Request, account: Account, action_id: str) -> Response:
        action = self.state.action(account, int(action_id))
        if action is None:
            return error(404)
        return Response(200, {"action": _action(action, self._region_of(action))})

    def _region_of(self, action: Action) -> str:
        """Where the action ran: its droplet's region, or its snapshot's once the droplet is
        gone; a transfer's region is where the image is copied to."""
        if action.transfer is not None:
            return action.transfer[1]
        server = self.state.servers.get(action.server_id or 0)
        region = server.region if server else (action.snapshot.region if action.snapshot else "")
        return region or "nyc3"

    # -- snapshots and images --------------------------------------------------------------

    def _droplet_snapshots(self, request: Request, account: Account, droplet_id: str) -> Response:
        server = self.state.server(account, int(droplet_id))
        if server is None:
            return error(404)
        snapshots = [s for s in self.state.snapshots_of(account) if s.server_id == server.id]
        return self._page(request, "snapshots", snapshots, _droplet_snapshot)

    def _list_snapshots(self, request: Request, account: Account) -> Response:
        resource_type = request.arg("resource_type")
        if resource_type not in (None, "droplet", "volume"):
            return error(400, "resource_type must be droplet or volume")
        droplets = [] if resource_type == "volume" else self.state.snapshots_of(account)
        volumes = [] if resource_type == "droplet" else self.state.volume_snapshots_of(account)
        if not volumes:
            return self._page(request, "snapshots", droplets, _snapshot)
        return self._page(request, "snapshots", [*droplets, *volumes], _any_snapshot)

    def _get_snapshot(self, request: Request, account: Account, snapshot_id: str) -> Response:
        volume_snapshot = self._find_volume_snapshot(account, snapshot_id)
        if volume_snapshot is not None:
            return Response(200, {"snapshot": _volume_snapshot(volume_snapshot)})
        snapshot = self._find(account, snapshot_id)
        if snapshot is None:
            return error(404)
        return Response(200, {"snapshot": _snapshot(snapshot)})

    def _delete_image(self, request: Request, account: Account, image_id: str) -> Response:
        if request.path.startswith("/v2/snapshots/"):  # a volume snapshot goes the same way
            volume_snapshot = self._find_volume_snapshot(account, image_id)
            if volume_snapshot is not None:
                del self.state.volume_snapshots[volume_snapshot.id]
                return Response(204)
        snapshot = self._find(account, image_id)
        if snapshot is None:
            return error(404)
        self.state.delete_snapshot(snapshot)
        return Response(204)

    def _find_volume_snapshot(self, account: Account, snapshot_id: str) -> VolumeSnapshot | None:
        found = self.state.volume_snapshots.get(unquote(snapshot_id))
        return found if found is not None and found.account == account.name else None

    # -- volumes -----------------------------------------------------------------------------

    def _list_volumes(self, request: Request, account: Account) -> Response:
        """`GET /v2/volumes[?name=&region=]`: the account's volumes, oldest first."""
        volumes = self.state.volumes_of(account)
        name, region = request.arg("name"), request.arg("region")
        volumes = [v for v in volumes if (not name or v.name == name)]
        volumes = [v for v in volumes if (not region or v.region == region)]
        return self._page(request, "volumes", volumes, _volume)

    def _create_volume_snapshot(
        self, request: Request, account: Account, volume_id: str
    ) -> Response:
        """`POST /v2/volumes/{id}/snapshots` {name, tags}: 201 with the finished snapshot (a
        volume snapshot needs no action); tags are made as they are named."""
        volume = self.state.volumes.get(unquote(volume_id))
        if volume is None or volume.account != account.name:
            return error(404)
        body = request.json()
        name, tags = body.get("name"), body.get("tags") or []
        if not isinstance(name, str) or not name.strip():
            return error(400, "name is required")
        if not isinstance(tags, list) or not all(
            isinstance(t, str) and TAG_NAME.match(t) for t in tags
        ):
            return error(422, "tags must be a list of tag names (letters, digits, : - _)")
        limit = account.snapshot_limit
        count = self.state.snapshot_count(account) + len(self.state.volume_snapshots_of(account))
        if limit is not None and count >= limit:
            return error(422, f"You have reached the snapshot limit of your account ({limit}).")
        made = self.state.add_volume_snapshot(account.name, volume.id, name, tags=tags)
        return Response(201, {"snapshot": _volume_snapshot(made)})

    def _volume_snapshots(self, request: Request, account: Account, volume_id: str) -> Response:
        volume = self.state.volumes.get(unquote(volume_id))
        if volume is None or volume.account != account.name:
            return error(404)
        found = [s for s in self.state.volume_snapshots_of(account) if s.volume_id == volume.id]
        return self._page(request, "snapshots", found, _volume_snapshot)

    def _post_image_action(self, request: Request, account: Account, image_id: str) -> Response:
        """`POST /v2/images/{id}/actions` `{"type": "transfer", "region": …}`: the image is
        copied to the region once the action ends (`State.transfer_seconds`); 201 with the
        action. A region it is in already, or one a transfer is running to, is refused (422),
        as is any type but transfer (convert does not apply to snapshots)."""
        snapshot = self._find(account, image_id)
        if snapshot is None:
            return error(404)
        body = request.json()
        if body.get("type") != "transfer":
            return error(
                422, f"the sandbox supports transfer image actions, not {body.get('type')!r}"
            )
        region = body.get("region")
        if not isinstance(region, str) or region not in REGION_NAMES:
            return error(422, "You specified an invalid region for the transfer.")
        if region in (snapshot.region, *snapshot.copies):
            return error(422, f"The image is already available in {region}.")
        self.state.advance()
        if any(
            a.status == "running" and a.transfer == (snapshot, region)
            for a in self.state.actions_of(account)
        ):
            return error(422, f"The image is already being transferred to {region}.")
        action = self.state.start_transfer(
            account, snapshot, region, fails=self._transfer_fails("digitalocean", region)
        )
        return Response(201, {"action": _action(action, region)})

    def _image_actions(self, request: Request, account: Account, image_id: str) -> Response:
        """`GET /v2/images/{id}/actions`: the image's transfers, newest first."""
        snapshot = self._find(account, image_id)
        if snapshot is None:
            return error(404)
        self.state.advance()
        actions = [
            a
            for a in self.state.actions_of(account)
            if a.transfer is not None and a.transfer[0] is snapshot
        ][::-1]
        return self._page(request, "actions", actions, lambda a: _action(a, a.transfer[1]))

    def _get_image_action(
        self, request: Request, account: Account, image_id: str, action_id: str
    ) -> Response:
        action = self.state.action(account, int(action_id))
        if action is None or action.transfer is None or str(action.transfer[0].id) != image_id:
            return error(404)
        return Response(200, {"action": _action(action, action.transfer[1])})

    def _find(self, account: Account, snapshot_id: str) -> Snapshot | None:
        return self.state.snapshot(account, int(snapshot_id)) if snapshot_id.isdigit() else None

    # -- tags ------------------------------------------------------------------------------

    def _create_tag(self, request: Request, account: Account) -> Response:
        name = request.json().get("name")
        if not isinstance(name, str) or not TAG_NAME.match(name):
            problem = "tag name must be 1-255 letters, digits, colons, dashes or underscores"
            body = {"error": problem, "messages": [problem], "root_causes": [problem]}
            return Response(400, body)
        canonical = self.state.register_tag(account, name)
        return Response(201, {"tag": self._tag(account, canonical)})

    def _tag(self, account: Account, tag: str) -> dict:
        key = tag.lower()
        droplets = sum(key in map(str.lower, s.tags) for s in self.state.servers_of(account))
        images = sum(key in map(str.lower, s.tags) for s in self.state.snapshots_of(account))
        volume_snapshots = sum(
            key in map(str.lower, s.tags) for s in self.state.volume_snapshots_of(account)
        )
        return {
            "name": tag,
            "resources": {
                "count": droplets + images + volume_snapshots,
                "droplets": {"count": droplets},
                "images": {"count": images},
                "volumes": {"count": 0},
                "volume_snapshots": {"count": volume_snapshots},
                "databases": {"count": 0},
            },
        }

    def _tag_resources(self, request: Request, account: Account, tag: str) -> Response:
        found = self._tagging(request, account, tag, "tag")
        if isinstance(found, Response):
            return found
        canonical, targets = found
        for target in targets:
            if canonical.lower() not in map(str.lower, target.tags):
                target.tags.append(canonical)
        return Response(204)

    def _untag_resources(self, request: Request, account: Account, tag: str) -> Response:
        """`DELETE /v2/tags/{tag}/resources` (tags_unassign_resources): 204; 404 for a tag
        the account does not have, or a resource it does not hold."""
        found = self._tagging(request, account, tag, "untag")
        if isinstance(found, Response):
            return found
        canonical, targets = found
        for target in targets:
            target.tags[:] = [t for t in target.tags if t.lower() != canonical.lower()]
        return Response(204)

    def _tagging(
        self, request: Request, account: Account, tag: str, verb: str
    ) -> Response | tuple[str, list]:
        """The tag's own spelling and the resources a (un)tag request names, or the error
        reply: 404 for a tag or a resource the account lacks, 422 for a body it cannot take."""
        canonical = account.tags.get(unquote(tag).lower())  # a path segment, as pydo quotes it
        resources = request.json().get("resources")
        if canonical is None:
            return error(404, f"tag {tag!r} not found")
        if not isinstance(resources, list) or not resources:
            return error(422, "resources must be a non-empty list")
        targets = []
        for item in resources:
            kind, rid = item.get("resource_type"), str(item.get("resource_id", ""))
            if kind not in ("droplet", "image", "volume_snapshot"):
                return error(422, f"the sandbox cannot {verb} resource_type {kind!r}")
            if kind == "droplet":
                found = self.state.server(account, int(rid)) if rid.isdigit() else None
            elif kind == "volume_snapshot":
                found = self._find_volume_snapshot(account, rid)
            else:
                found = self._find(account, rid)
            if found is None:
                return error(404, f"{kind} {rid!r} not found")
            targets.append(found)
        return canonical, targets

    # -- paging ----------------------------------------------------------------------------

    def _page(self, request: Request, key: str, items: list, render: Callable) -> Response:
        page = positive_int(request.arg("page"), 1)
        per_page = min(positive_int(request.arg("per_page"), 20), 200)
        start, end, last = page_bounds(page, per_page, len(items))
        pages: dict[str, str] = {}
        if page > 1:
            pages["first"] = request.url_with(page=1, per_page=per_page)
            pages["prev"] = request.url_with(page=min(page - 1, last), per_page=per_page)
        if page < last:
            pages["next"] = request.url_with(page=page + 1, per_page=per_page)
            pages["last"] = request.url_with(page=last, per_page=per_page)
        body = {
            key: [render(item) for item in items[start:end]],
            "links": {"pages": pages},
            "meta": {"total": len(items)},
        }
        return Response(200, body)


def _region(slug: str) -> dict:
    return {
        "name": REGION_NAMES.get(slug, slug),
        "slug": slug,
        "features": ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"],
        "available": True,
        "sizes": [s.slug for s in SIZES.values() if s.available and slug in s.regions],
    }


def _size(size: Size) -> dict:
    return {
        "slug": size.slug,
        "memory": size.memory,
        "vcpus": size.vcpus,
        "disk": size.disk,
        "transfer": size.transfer,
        "price_monthly": size.price_monthly,
        "price_hourly": size.price_hourly,
        "regions": list(size.regions),
        "available": size.available,
        "description": size.description,
        "disk_info": [{"type": "local", "size": {"amount": size.disk, "unit": "gib"}}],
    }


def _networks(server: Server) -> dict:
    """A private (VPC) address always; public IPv4 unless turned off; IPv6 when asked."""
    octet = server.id % 250 + 2
    v4 = []
    if server.public_ipv4:
        v4.append(
            {
                "ip_address": f"203.0.113.{octet}",
                "netmask": "255.255.255.0",
                "gateway": "203.0.113.1",
                "type": "public",
            }
        )
    v4.append(
        {
            "ip_address": f"10.116.{server.id // 250 % 250}.{octet}",
            "netmask": "255.255.240.0",
            "type": "private",
        }
    )
    v6 = []
    if server.ipv6:
        address = server.ipv6.partition("/")[0]
        v6.append(
            {
                "ip_address": address,
                "netmask": 64,
                "gateway": "2001:db8::1",
                "type": "public",
            }
        )
    return {"v4": v4, "v6": v6}


def _action(action: Action, region: str) -> dict:
    return {
        "id": action.id,
        "status": {"running": "in-progress", "success": "completed", "error": "errored"}[
            action.status
        ],
        "type": action.command,
        "started_at": format_time(action.started),
        "completed_at": format_time(action.finished) if action.finished else None,
        "resource_id": action.transfer[0].id if action.transfer else action.server_id,
        "resource_type": "image" if action.transfer else "droplet",
        "region": _region(region),
        "region_slug": region,
    }


def _droplet_snapshot(snapshot: Snapshot) -> dict:
    return {
        "id": snapshot.id,
        "name": snapshot.name,
        "created_at": format_time(snapshot.created),
        "regions": [snapshot.region, *snapshot.copies],
        "min_disk_size": snapshot.min_disk_gb,
        "size_gigabytes": snapshot.size_gigabytes,
        "type": snapshot.type if snapshot.type in ("snapshot", "backup") else "snapshot",
    }


def _snapshot(snapshot: Snapshot) -> dict:
    return {
        "id": str(snapshot.id),
        "name": snapshot.name,
        "created_at": format_time(snapshot.created),
        "regions": [snapshot.region, *snapshot.copies],
        "resource_id": str(snapshot.server_id) if snapshot.server_id is not None else "",
        "resource_type": "droplet",
        "min_disk_size": snapshot.min_disk_gb,
        "size_gigabytes": snapshot.size_gigabytes,
        "tags": list(snapshot.tags),
    }


def _volume(volume) -> dict:
    return {
        "id": volume.id,
        "region": _region(volume.region),
        "droplet_ids": list(volume.droplet_ids),
        "name": volume.name,
        "description": "",
        "size_gigabytes": volume.size_gigabytes,
        "created_at": format_time(volume.created),
        "filesystem_type": "ext4",
        "filesystem_label": volume.name[:16],
        "tags": [],
    }


def _volume_snapshot(snapshot: VolumeSnapshot) -> dict:
    return {
        "id": snapshot.id,
        "name": snapshot.name,
        "created_at": format_time(snapshot.created),
        "regions": [snapshot.region],
        "resource_id": snapshot.volume_id,
        "resource_type": "volume",
        "min_disk_size": snapshot.min_disk_gb,
        "size_gigabytes": snapshot.size_gigabytes,
        "tags": list(snapshot.tags),
    }


def _any_snapshot(snapshot: Snapshot | VolumeSnapshot) -> dict:
    return (
        _volume_snapshot(snapshot) if isinstance(snapshot, VolumeSnapshot) else _snapshot(snapshot)
    )
