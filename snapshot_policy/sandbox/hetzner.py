"""Hetzner Cloud API v1 as the fake serves it: servers, images, create_image and actions.

Objects are shaped after the property examples of the official OpenAPI description
(`hetzner-cloud-v1.json`) with the fields that matter taken from the state, so responses
validate against its schemas. Conventions: errors `{"error": {"code", "message", "details"}}`;
`RateLimit-*` headers on every response; `meta.pagination` plus a `Link` header, `per_page`
at most 50 and `next_page` null on the last page; label selectors; labels replaced as a whole
by PUT. Actions are read by id, several at once (`GET /actions?id=..`, paginated like every
listing: 25 a page unless `per_page` says up to 50; listing all of them without an id was
removed in 2025: 410 `deprecated_api_endpoint`), or as the servers' action list
(`GET /servers/actions`). Besides create_image, the server actions of `OTHER_ACTIONS` run
(changing nothing) to make a server busy. A 429 says when to retry only as Hetzner documents it,
through `RateLimit-Reset` (the time the whole budget is back; no `Retry-After`), and every
reply carries its `Date`, the clock that reset is read against. Two system images (Ubuntu,
Debian) are listed for every account, as on the real API, so a client that forgets
`type=snapshot` sees them. Deleting a protected image gives 423 `protected`, an image still
being created 423 `locked`, and a server with a running action refuses `create_image` with
423 `locked`. A failed create_image removes its image.

Servers made from images (`POST /servers`, 201 with the server `initializing`, its
create_server action and, when started (the default), start_server in `next_actions`, and a
root password unless SSH keys were given) boot for the account's `boot_seconds`, then are
`running` (`off` when not started, or when a `boot_fail` fault made the actions end in error).
`DELETE /servers/{id}` removes one at once and answers its finished delete_server action (423
`protected` with delete protection). `GET /server_types` lists the catalogue (catalogue.py).
A create is refused as the API refuses it: 409 `uniqueness_error` for a name the project
already has; 412 `resource_unavailable` for a type that is deprecated or sold out in the
location; 422 `invalid_input` naming the field for an invalid name, an unknown type, image,
location or network, an image still being made, an image whose `disk_size` is larger than the
type's disk or whose architecture differs from the type's, and for a server with neither a
public IPv4 nor IPv6 nor a network that is to be started (hcloud-go refuses that too). Any
network id is accepted (the sandbox keeps no networks; a server gets a 10.x address in each).
An account's `snapshot_limit` makes create_image beyond it answer 403
`resource_limit_exceeded`, and its `server_limit` a create beyond it.

`GET /pricing` answers every key the description requires, in the account's `pricing`
(currency, VAT rate, the net image price per GB-month); faults reach it as any request.
"""

from __future__ import annotations

import itertools
import math
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import formatdate

from .catalogue import DEFAULT_MACHINE_TYPE, SERVER_TYPES, SERVER_TYPES_BY_ID, ServerType
from .faults import Fault
from .labels import label_errors, parse_selector
from .state import PRICING, Account, Action, Server, Snapshot, State, format_time
from .wire import BadBody, Request, Response, page_bounds, positive_int

ERROR_CODES = {
    400: "json_error",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    410: "deprecated_api_endpoint",
    422: "invalid_input",
    423: "locked",
    429: "rate_limit_exceeded",
    500: "server_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}
LOCATIONS = {
    "fsn1": ("Falkenstein DC Park 1", "DE", "Falkenstein", 50.47612, 12.370071, "fsn1-dc14"),
    "nbg1": ("Nuremberg DC Park 1", "DE", "Nuremberg", 49.452102, 11.076665, "nbg1-dc3"),
    "hel1": ("Helsinki DC Park 1", "FI", "Helsinki", 60.169855, 24.938379, "hel1-dc2"),
}
SORT_KEYS = {"id": lambda o: o.id, "name": lambda o: o.name, "created": lambda o: o.created}
ACTION_SORT_KEYS = {
    "id": lambda a: a.id,
    "command": lambda a: a.command,
    "status": lambda a: a.status,
    "started": lambda a: a.started,
    "finished": lambda a: (a.finished is None, a.finished or a.started),  # running ones last
}
ACTION_STATUSES = ("running", "success", "error")
OTHER_ACTIONS = {
    "poweroff": "stop_server",
    "poweron": "start_server",
    "reboot": "reboot_server",
    "shutdown": "shutdown_server",
    "change_type": "change_server_type",
}
STATUSES = {"starting": "initializing", "running": "running", "off": "off", "stopping": "stopping"}
# The power actions change the server's status (State.power_action); ours -> Hetzner's path.
POWER_ACTIONS = {"shutdown": "shutdown", "poweroff": "power_off", "poweron": "power_on"}
HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)
DEPRECATION = {"announced": "2025-10-16T06:00:00Z", "unavailable_after": "2026-01-01T00:00:00Z"}
ACTIONS_LIST_REMOVED = (
    "https://docs.hetzner.cloud/changelog"
    "#2025-01-30-listing-arbitrary-actions-in-the-actions-list-endpoint-is-removed"
)


def error(
    status: int, message: str, code: str | None = None, details: dict | None = None
) -> Response:
    body = {"error": {"code": code or ERROR_CODES.get(status, "server_error"), "message": message}}
    body["error"]["details"] = details or {}
    return Response(status, body)


SYSTEM_IMAGES = {
    161547269: Snapshot(
        161547269,
        "",
        None,
        "",
        "Ubuntu 24.04",
        datetime(2024, 4, 25, tzinfo=timezone.utc),
        type="system",
        size_gigabytes=0,
    ),
    114690387: Snapshot(
        114690387,
        "",
        None,
        "",
        "Debian 12",
        datetime(2023, 6, 13, tzinfo=timezone.utc),
        type="system",
        size_gigabytes=0,
    ),
}
SYSTEM_NAMES = {
    161547269: ("ubuntu-24.04", "ubuntu", "24.04"),
    114690387: ("debian-12", "debian", "12"),
}


class HetznerAPI:
    """Answers `/v1/...` requests against the shared state."""

    def __init__(
        self,
        state: State,
        action_fails: Callable[[str, int], bool],
        boot: Callable[[str, str], tuple[bool, float | None]] | None = None,
    ) -> None:
        self.state = state
        self._action_fails = action_fails
        self._boot = boot or (lambda service, name: (False, None))
        # Numbered, not random, so a run's failure messages read the same each time.
        self._correlation_ids = itertools.count(1)
        self._routes: list[tuple[str, re.Pattern, Callable]] = [
            ("GET", re.compile(r"/v1/servers"), self._list_servers),
            ("POST", re.compile(r"/v1/servers"), self._create_server),
            ("GET", re.compile(r"/v1/servers/actions"), self._list_server_actions),
            ("GET", re.compile(r"/v1/servers/(\d+)"), self._get_server),
            ("DELETE", re.compile(r"/v1/servers/(\d+)"), self._delete_server),
            ("GET", re.compile(r"/v1/server_types"), self._list_server_types),
            ("GET", re.compile(r"/v1/server_types/(\d+)"), self._get_server_type),
            ("POST", re.compile(r"/v1/servers/(\d+)/actions/create_image"), self._create_image),
            (
                "POST",
                re.compile(r"/v1/servers/(\d+)/actions/(" + "|".join(OTHER_ACTIONS) + ")"),
                self._server_action,
            ),
            ("GET", re.compile(r"/v1/pricing"), self._pricing),
            ("GET", re.compile(r"/v1/actions"), self._get_actions),
            ("GET", re.compile(r"/v1/actions/(\d+)"), self._get_action),
            ("GET", re.compile(r"/v1/images"), self._list_images),
            ("GET", re.compile(r"/v1/images/(\d+)"), self._get_image),
            ("PUT", re.compile(r"/v1/images/(\d+)"), self._update_image),
            ("DELETE", re.compile(r"/v1/images/(\d+)"), self._delete_image),
            (
                "POST",
                re.compile(r"/v1/images/(\d+)/actions/change_protection"),
                self._change_protection,
            ),
        ]

    def handle(self, request: Request) -> Response:
        account = self.account(request)
        if account is None:
            return self._finish(error(401, "unable to authenticate"), None)
        if self.state.take_request(account) is not None:
            return self._too_many(None, account)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(request.path.rstrip("/"))
            if match and method == request.method:
                try:
                    response = handler(request, account, *match.groups())
                except BadBody as exc:
                    response = error(400, str(exc))
                except ValueError as exc:
                    response = error(422, f"invalid input: {exc}")
                return self._finish(response, account)
        return self._finish(error(404, "not found"), account)

    def account(self, request: Request) -> Account | None:
        token = request.bearer()
        return self.state.account_for_token("hetzner", token) if token else None

    def fault_response(self, fault: Fault, account: Account | None) -> Response:
        if fault.kind == "rate_limit":
            return self._too_many(fault.retry_after, account)
        return self._finish(error(fault.status, "injected fault"), account)

    def _too_many(self, one_request_in: float | None, account: Account | None) -> Response:
        """A 429; `one_request_in` seconds until a request is free again (None: the account's
        budget says)."""
        return self._finish(
            error(429, "limit of requests per hour reached"), account, one_request_in
        )

    def _finish(
        self, response: Response, account: Account | None, one_request_in: float | None = None
    ) -> Response:
        """Add the rate-limit, date and correlation headers every Hetzner response carries.

        The budget refills evenly, so "one request in t seconds" is "all of it in t × limit"."""
        now = int(time.time())
        limit, remaining, reset = self.state.bucket(account, "hetzner").status()
        if response.status == 429:
            remaining = 0
            if one_request_in is not None:
                reset = now + math.ceil(one_request_in * limit)
        response.headers.update(
            {
                "RateLimit-Limit": str(limit),
                "RateLimit-Remaining": str(remaining),
                "RateLimit-Reset": str(reset),
                "Date": formatdate(now, usegmt=True),
                "X-Correlation-Id": f"{next(self._correlation_ids):016x}",
            }
        )
        response.account = account.name if account else None
        return response

    # -- servers ---------------------------------------------------------------------------

    def _list_servers(self, request: Request, account: Account) -> Response:
        servers = self.state.servers_of(account)
        if name := request.arg("name"):
            servers = [s for s in servers if s.name == name]
        if selector := request.arg("label_selector"):
            matches = parse_selector(selector)
            servers = [s for s in servers if matches(s.labels)]
        if statuses := request.args("status"):
            servers = [s for s in servers if STATUSES[s.status] in statuses]
        return self._page(request, "servers", _sorted(servers, request.args("sort")), self._server)

    def _get_server(self, request: Request, account: Account, server_id: str) -> Response:
        server = self.state.server(account, int(server_id))
        if server is None:
            return error(404, f"server with ID '{server_id}' not found")
        return Response(200, {"server": self._server(server)})

    def _server(self, server: Server) -> dict:
        location = _location(server.region)
        datacenter = LOCATIONS.get(server.region, LOCATIONS["fsn1"])[5]
        kind = SERVER_TYPES.get(server.machine_type, SERVER_TYPES[DEFAULT_MACHINE_TYPE["hetzner"]])
        octet = server.id % 250 + 2
        return {
            "id": server.id,
            "name": server.name,
            "status": STATUSES[server.status],
            "created": format_time(server.created),
            "public_net": {
                "ipv4": (
                    {
                        "id": server.id,
                        "ip": f"198.51.100.{octet}",
                        "blocked": False,
                        "dns_ptr": f"static.{octet}.100.51.198.clients.your-server.de",
                    }
                    if server.public_ipv4
                    else None
                ),
                "ipv6": (
                    {"id": server.id, "ip": server.ipv6, "blocked": False, "dns_ptr": []}
                    if server.ipv6 is not None
                    else None
                ),
                "floating_ips": [],
                "firewalls": [],
            },
            "private_net": [
                {
                    "network": network,
                    "ip": f"10.{number % 250}.{server.id // 250 % 250}.{octet}",
                    "alias_ips": [],
                    "mac_address": f"86:00:00:{number % 256:02x}:{server.id // 256 % 256:02x}:"
                    f"{server.id % 256:02x}",
                }
                for number, network in enumerate(server.networks)
            ],
            "server_type": _server_type(kind),
            "datacenter": {
                "id": location["id"],
                "name": datacenter,
                "description": f"{location['city']} virtual DC",
                "location": location,
                "server_types": {
                    "supported": sorted(SERVER_TYPES_BY_ID),
                    "available": sorted(
                        t.id for t in SERVER_TYPES.values() if t.orderable_in(server.region)
                    ),
                    "available_for_migration": sorted(SERVER_TYPES_BY_ID),
                },
            },
            "location": location,
            "image": self._server_image(server),
            "iso": None,
            "rescue_enabled": False,
            "locked": self.state.running_action(server.id) is not None,
            "backup_window": None,
            "outgoing_traffic": 0,
            "ingoing_traffic": 0,
            "included_traffic": 21990232555520,
            "protection": {"delete": server.protected, "rebuild": server.protected},
            "labels": dict(server.labels),
            "volumes": [],
            "load_balancers": [],
            "primary_disk_size": kind.disk,
            "placement_group": None,
        }

    def _server_image(self, server: Server) -> dict | None:
        """Ubuntu for seeded servers; the image it was made from, null once that is gone."""
        if server.image_id is None:
            return _image(SYSTEM_IMAGES[161547269])
        image = self.state.snapshots.get(server.image_id) or SYSTEM_IMAGES.get(server.image_id)
        return _image(image) if image is not None else None

    # -- creating and deleting servers -----------------------------------------------------

    def _create_server(self, request: Request, account: Account) -> Response:
        """`POST /servers`: a server from an image, refused as Hetzner refuses it (the module
        docstring); 201 with the server, its create_server action and start_server."""
        body = request.json()
        made = self._server_request(body, account)
        if isinstance(made, Response):
            return made
        kind, image, location, public_net, networks, start = made
        if self.state.server_limit_reached(account):
            return error(
                403,
                "server limit exceeded",
                "resource_limit_exceeded",
                {"limits": [{"name": "server_limit"}]},
            )
        name = body["name"]
        fails, seconds = self._boot("hetzner", name)
        server, actions = self.state.create_server(
            account,
            name,
            machine_type=kind.name,
            region=location,
            image=None if image.id in SYSTEM_IMAGES else image,
            labels=body.get("labels") or {},
            public_ipv4=public_net.get("enable_ipv4", True),
            ipv6=public_net.get("enable_ipv6", True),
            networks=networks,
            start=start,
            fails=fails,
            seconds=seconds,
        )
        if image.id in SYSTEM_IMAGES:
            server.image_id = image.id  # shown as that system image, not the seeded default
        return Response(
            201,
            {
                "server": self._server(server),
                "action": self._action(actions[0]),
                "next_actions": [self._action(a) for a in actions[1:]],
                "root_password": None if body.get("ssh_keys") else f"sandbox-root-{server.id}",
            },
        )

    def _server_request(
        self, body: dict, account: Account
    ) -> tuple[ServerType, Snapshot, str, dict, list[int], bool] | Response:
        """What a create asks for (type, image, location, public_net, networks, start), or the
        answer refusing it."""
        name = body.get("name")
        if not isinstance(name, str) or not HOSTNAME.match(name):
            return _invalid("name", "must be a valid hostname (RFC 1123)")
        if problems := label_errors(body.get("labels") or {}):
            return _invalid("labels", *problems)
        public_net = body.get("public_net") or {}
        if not isinstance(public_net, dict) or any(
            not isinstance(public_net.get(key, True), bool)
            for key in ("enable_ipv4", "enable_ipv6")
        ):
            return _invalid("public_net", "enable_ipv4 and enable_ipv6 must be booleans")
        if public_net.get("ipv4") is not None or public_net.get("ipv6") is not None:
            return _invalid("public_net", "the sandbox has no Primary IPs to assign")
        networks = body.get("networks") or []
        if not isinstance(networks, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in networks
        ):
            return _invalid("networks", "must be a list of network IDs")
        start = body.get("start_after_create")
        start = True if start is None else start  # hcloud sends null for its default
        if not isinstance(start, bool):
            return _invalid("start_after_create", "must be a boolean")
        public = public_net.get("enable_ipv4", True) or public_net.get("enable_ipv6", True)
        if not public and not networks and start:
            return _invalid(
                "public_net",
                "a server without a public IPv4 or IPv6 needs a network to start with",
            )
        kind = _find_type(body.get("server_type"))
        if kind is None:
            return _invalid("server_type", f"server type {body.get('server_type')!r} not found")
        image = self._find_image(account, body.get("image"))
        if image is None:
            return _invalid("image", f"image {body.get('image')!r} not found")
        if image.status != "available":
            return _invalid("image", f"image {image.id} is not available: it is {image.status}")
        location = body.get("location")
        if isinstance(location, str) and location.isdigit():
            location = int(location)
        if isinstance(location, int) and not isinstance(location, bool):  # by id
            location = next((n for n in LOCATIONS if _location(n)["id"] == location), "")
        if location is None:
            datacenter = body.get("datacenter")
            found = [k for k, v in LOCATIONS.items() if datacenter in (k, v[5])]
            location = found[0] if found else None
            if datacenter is not None and location is None:
                return _invalid("datacenter", f"datacenter {datacenter!r} not found")
        if location is None:
            orderable = [n for n in sorted(LOCATIONS) if kind.orderable_in(n)]
            location = "fsn1" if "fsn1" in orderable else (orderable or ["fsn1"])[0]
        if not isinstance(location, str) or location not in LOCATIONS:
            return _invalid("location", f"location {location!r} not found")
        if not kind.orderable_in(location):
            why = "deprecated" if kind.deprecated else f"not available in {location}"
            return error(
                412,
                f"server type {kind.name} is {why}",
                "resource_unavailable",
            )
        if image.architecture != kind.architecture:
            return _invalid(
                "image",
                (
                    f"image architecture {image.architecture} does not match the server "
                    f"type's ({kind.name}: {kind.architecture})"
                ),
            )
        needed = _disk_size(image)
        if kind.disk < needed:
            return _invalid(
                "server_type",
                (
                    f"server type {kind.name} has a {kind.disk} GB disk; image {image.id} "
                    f"needs {needed:g} GB"
                ),
            )
        if any(s.name == name for s in self.state.servers_of(account)):
            return error(
                409,
                "server name is already used",
                "uniqueness_error",
                {"fields": [{"name": "name"}]},
            )
        return kind, image, location, public_net, networks, start

    def _find_image(self, account: Account, wanted: object) -> Snapshot | None:
        """An image by id (the account's snapshot or backup, or a system image) or by name."""
        if isinstance(wanted, str) and wanted.isdigit():
            wanted = int(wanted)
        if isinstance(wanted, int) and not isinstance(wanted, bool):
            return self.state.snapshot(account, wanted) or SYSTEM_IMAGES.get(wanted)
        for image_id, (system_name, _, _) in SYSTEM_NAMES.items():
            if wanted == system_name:
                return SYSTEM_IMAGES[image_id]
        return None

    def _delete_server(self, request: Request, account: Account, server_id: str) -> Response:
        """`DELETE /servers/{id}`: gone at once, booting or not (its images stay); refused
        with 423 `protected` under delete protection."""
        server = self.state.server(account, int(server_id))
        if server is None:
            return error(404, f"server with ID '{server_id}' not found")
        if server.protected:
            return error(423, "server is protected against deletion", "protected")
        self.state.delete_server(server)
        action = self.state.instant_action(
            account, "delete_server", [{"id": server.id, "type": "server"}]
        )
        return Response(200, {"action": self._action(action)})

    def _list_server_types(self, request: Request, account: Account) -> Response:
        kinds = sorted(SERVER_TYPES.values(), key=lambda k: k.id)
        if (name := request.arg("name")) is not None:
            kinds = [k for k in kinds if k.name == name]
        return self._page(request, "server_types", kinds, _server_type)

    def _get_server_type(self, request: Request, account: Account, type_id: str) -> Response:
        kind = SERVER_TYPES_BY_ID.get(int(type_id))
        if kind is None:
            return error(404, f"server type with ID '{type_id}' not found")
        return Response(200, {"server_type": _server_type(kind)})

    # -- pricing ---------------------------------------------------------------------------

    def _pricing(self, request: Request, account: Account) -> Response:
        """`GET /pricing`: every key the API's description requires, in the account's currency
        (`Account.pricing`); the image price is the one that matters, the server types' are
        the catalogue's, with the account's VAT."""
        given = {**PRICING, **account.pricing}
        vat = float(given["vat_rate"]) / 100

        def price(net: str) -> dict:
            return {"net": f"{float(net):.4f}", "gross": f"{float(net) * (1 + vat):.4f}"}

        def located(net: str, hourly: str | None = None) -> list[dict]:
            return [
                {
                    "location": name,
                    **({"price_hourly": price(hourly)} if hourly is not None else {}),
                    "price_monthly": price(net),
                }
                for name in sorted(LOCATIONS)
            ]

        pricing = {
            "currency": given["currency"],
            "vat_rate": f"{float(given['vat_rate']):.2f}",
            "primary_ips": [
                {"type": "ipv4", "prices": located("0.5000", "0.0008")},
                {"type": "ipv6", "prices": located("0.0000", "0.0000")},
            ],
            "floating_ips": [
                {"type": kind, "prices": located(net)}
                for kind, net in (("ipv4", "3.0000"), ("ipv6", "3.0000"))
            ],
            "image": {"price_per_gb_month": price(given["image"])},
            "volume": {"price_per_gb_month": price("0.0440")},
            "server_backup": {"percentage": "20.00"},
            "server_types": [
                {
                    "id": kind.id,
                    "name": kind.name,
                    "prices": [
                        {
                            "location": location,
                            "price_hourly": price(kind.price_hourly),
                            "price_monthly": price(kind.price_monthly),
                            "included_traffic": 21990232555520,
                            "price_per_tb_traffic": price("1.0000"),
                        }
                        for location, _ in kind.locations
                    ],
                }
                for kind in sorted(SERVER_TYPES.values(), key=lambda k: k.id)
            ],
            "load_balancer_types": [],
            "floating_ip": {"price_monthly": price("3.0000")},
        }
        return Response(200, {"pricing": pricing})

    # -- create_image and actions ----------------------------------------------------------

    def _create_image(self, request: Request, account: Account, server_id: str) -> Response:
        server = self.state.server(account, int(server_id))
        if server is None:
            return error(404, f"server with ID '{server_id}' not found")
        body = request.json()
        description, kind = body.get("description"), body.get("type") or "snapshot"
        labels = body.get("labels") or {}
        if kind not in ("snapshot", "backup"):
            return _invalid("type", "must be snapshot or backup")
        if description is not None and not isinstance(description, str):
            return _invalid("description", "must be a string")
        if problems := label_errors(labels):
            return _invalid("labels", *problems)
        if self.state.running_action(server.id) is not None:
            return error(423, "server is locked: an action is already running", "locked")
        limit = account.snapshot_limit
        if kind == "snapshot" and limit is not None and self.state.snapshot_count(account) >= limit:
            return error(
                403,
                "project limit exceeded",
                "resource_limit_exceeded",
                {"limits": [{"name": "snapshot_limit"}]},
            )
        if description is None:
            description = f"{server.name}-{self.state.clock():%Y-%m-%dT%H%M%S}"
        action = self.state.start_snapshot(
            account,
            server,
            description,
            labels=labels,
            type=kind,
            fails=self._action_fails("hetzner", server.id),
        )
        assert action.snapshot is not None
        return Response(201, {"image": _image(action.snapshot), "action": self._action(action)})

    def _server_action(
        self, request: Request, account: Account, server_id: str, name: str
    ) -> Response:
        server = self.state.server(account, int(server_id))
        if server is None:
            return error(404, f"server with ID '{server_id}' not found")
        if self.state.running_action(server.id) is not None:
            return error(423, "server is locked: an action is already running", "locked")
        if name in POWER_ACTIONS:
            kind = POWER_ACTIONS[name]
            fault = {"shutdown": "ignore_shutdown", "power_on": "fail_power_on"}.get(kind)
            hit = fault is not None and self._action_fails("hetzner", server.id, fault)
            action = self.state.power_action(
                account, server, kind, OTHER_ACTIONS[name], ignored=hit, fails=hit
            )
            return Response(201, {"action": self._action(action)})
        return Response(
            201,
            {"action": self._action(self.state.start_action(account, server, OTHER_ACTIONS[name]))},
        )

    def _get_action(self, request: Request, account: Account, action_id: str) -> Response:
        action = self.state.action(account, int(action_id))
        if action is None:
            return error(404, f"action with ID '{action_id}' not found")
        return Response(200, {"action": self._action(action)})

    def _get_actions(self, request: Request, account: Account) -> Response:
        """`GET /actions?id=..`: the project's actions with those ids, a page at a time; listing
        them all without an id was removed on 2025-01-30 and now answers 410
        `deprecated_api_endpoint`."""
        if not request.args("id"):
            return error(
                410,
                "API functionality was removed: listing actions needs one or more id parameters",
                details={"announcement": ACTIONS_LIST_REMOVED},
            )
        ids = _action_ids(request)
        if isinstance(ids, Response):
            return ids
        return self._page(request, "actions", self.state.actions_by_ids(account, ids), self._action)

    def _list_server_actions(self, request: Request, account: Account) -> Response:
        """The actions of all the project's servers (create_image among them), filtered by
        `id` and `status`, sorted and paged like the other listings."""
        ids = _action_ids(request)
        if isinstance(ids, Response):
            return ids
        statuses = request.args("status")
        for value in statuses:
            if value not in ACTION_STATUSES:
                return _invalid("status", f"unknown action status {value!r}")
        actions = self.state.actions_by_ids(account, ids) if ids else self.state.actions_of(account)
        actions = [
            a for a in actions if a.server_id is not None and (not statuses or a.status in statuses)
        ]
        ordered = _sorted(actions, request.args("sort"), keys=ACTION_SORT_KEYS, by_id=True)
        return self._page(request, "actions", ordered, self._action)

    def _action(self, action: Action) -> dict:
        failed = action.status == "error"
        return {
            "id": action.id,
            "command": action.command,
            "status": action.status,
            "started": format_time(action.started),
            "finished": format_time(action.finished) if action.finished else None,
            "progress": action.progress(self.state.monotonic()),
            "resources": list(action.resources),
            "error": {"code": "action_failed", "message": "Action failed"} if failed else None,
        }

    # -- images ----------------------------------------------------------------------------

    def _list_images(self, request: Request, account: Account) -> Response:
        types, statuses = request.args("type"), request.args("status")
        for value in types:
            if value not in ("system", "app", "snapshot", "backup"):
                return _invalid("type", f"unknown image type {value!r}")
        for value in statuses:
            if value not in ("available", "creating", "unavailable"):
                return _invalid("status", f"unknown image status {value!r}")
        # Every page of a listing asks for the same filtered list: kept, not rebuilt per page;
        # so is its order when it is by id (names and dates may change without notice).
        sort = request.args("sort")
        by_id = all(spec.partition(":")[0] == "id" for spec in sort)
        key = ("images", tuple(types), tuple(statuses), tuple(sort) if by_id else ())

        def build() -> list[Snapshot]:
            return _sorted(
                _images(self.state.snapshots_of(account), types, statuses),
                sort if by_id else [],
                by_id=True,
            )

        images = self.state.kept(account, key, build)
        if request.args("bound_to"):
            images = []  # only backups are bound to a server, and the sandbox has none
        if name := request.arg("name"):
            images = [i for i in images if SYSTEM_NAMES.get(i.id, ("",))[0] == name]
        if selector := request.arg("label_selector"):
            matches = parse_selector(selector)
            images = [i for i in images if matches(i.labels)]
        ordered = images if by_id else _sorted(images, sort, by_id=True)
        return self._page(request, "images", ordered, _image)

    def _image_or_error(self, account: Account, image_id: str) -> Snapshot | Response:
        snapshot = self.state.snapshot(account, int(image_id))
        if snapshot is not None:
            return snapshot
        if int(image_id) in SYSTEM_IMAGES:
            return error(403, "system images cannot be changed", "forbidden")
        return error(404, f"image with ID '{image_id}' not found")

    def _get_image(self, request: Request, account: Account, image_id: str) -> Response:
        if int(image_id) in SYSTEM_IMAGES:
            return Response(200, {"image": _image(SYSTEM_IMAGES[int(image_id)])})
        found = self._image_or_error(account, image_id)
        return found if isinstance(found, Response) else Response(200, {"image": _image(found)})

    def _update_image(self, request: Request, account: Account, image_id: str) -> Response:
        found = self._image_or_error(account, image_id)
        if isinstance(found, Response):
            return found
        body = request.json()
        if "description" in body and not isinstance(body["description"], str):
            return _invalid("description", "must be a string")
        if body.get("type") not in (None, "snapshot"):
            return _invalid("type", "can only be changed to snapshot")
        if "labels" in body and (problems := label_errors(body["labels"])):
            return _invalid("labels", *problems)
        if "description" in body:
            found.name = body["description"]
        if body.get("type"):
            found.type = "snapshot"
        if "labels" in body:
            found.labels = dict(body["labels"])
        return Response(200, {"image": _image(found)})

    def _delete_image(self, request: Request, account: Account, image_id: str) -> Response:
        found = self._image_or_error(account, image_id)
        if isinstance(found, Response):
            return found
        if found.protected:
            return error(423, "image is protected against deletion", "protected")
        if found.status == "creating":
            return error(423, "image is locked: it is still being created", "locked")
        self.state.delete_snapshot(found)
        return Response(204)

    def _change_protection(self, request: Request, account: Account, image_id: str) -> Response:
        found = self._image_or_error(account, image_id)
        if isinstance(found, Response):
            return found
        body = request.json()
        if "delete" in body:
            if not isinstance(body["delete"], bool):
                return _invalid("delete", "must be a boolean")
            found.protected = body["delete"]
        action = self.state.instant_action(
            account, "change_protection", [{"id": found.id, "type": "image"}]
        )
        return Response(201, {"action": self._action(action)})

    # -- paging ----------------------------------------------------------------------------

    def _page(self, request: Request, key: str, items: list, render: Callable) -> Response:
        page = positive_int(request.arg("page"), 1)
        per_page = min(positive_int(request.arg("per_page"), 25), 50)
        start, end, last = page_bounds(page, per_page, len(items))
        links = [(page - 1, "prev")] if page > 1 else []
        links += [(page + 1, "next")] if page < last else []
        links += [(last, "last")]
        link_header = ", ".join(
            f'<{request.url_with(page=number, per_page=per_page)}>; rel="{rel}"'
            for number, rel in links
        )
        body = {
            key: [render(item) for item in items[start:end]],
            "meta": {
                "pagination": {
                    "page": page,
                    "per_page": per_page,
                    "previous_page": page - 1 if page > 1 else None,
                    "next_page": page + 1 if page < last else None,
                    "last_page": last,
                    "total_entries": len(items),
                }
            },
        }
        return Response(200, body, {"Link": link_header})


def _invalid(field: str, *messages: str) -> Response:
    details = {"fields": [{"name": field, "messages": list(messages)}]}
    return error(422, f"invalid input in field '{field}': {'; '.join(messages)}", details=details)


def _action_ids(request: Request) -> list[int] | Response:
    """The repeatable `id` query parameter: positive integers, or a 422 naming the bad one."""
    ids = []
    for value in request.args("id"):
        if not value.isdigit() or int(value) < 1:
            return _invalid("id", f"{value!r} is not an action ID")
        ids.append(int(value))
    return ids


def _images(snapshots: list[Snapshot], types: list[str], statuses: list[str]) -> list[Snapshot]:
    """The system images and the account's snapshots (by id), by id, of `types` and `statuses`
    (each: any, if empty)."""
    images = sorted([*SYSTEM_IMAGES.values(), *snapshots], key=SORT_KEYS["id"])
    return [
        i
        for i in images
        if (not types or i.type in types) and (not statuses or i.status in statuses)
    ]


def _sorted(items: list, sort: list[str], *, keys: dict = SORT_KEYS, by_id: bool = False) -> list:
    """Apply Hetzner's `sort` parameters (`field[:asc|:desc]`, repeatable); default by id.

    `by_id`: the items are already in id order, so the default sort (a full pass per page
    served, at 40,000 images) is skipped; the result is the same (without `sort`, `items`
    itself: it is only read).
    """
    if by_id and not sort:
        return items
    ordered = list(items) if by_id else sorted(items, key=keys["id"])
    for spec in reversed(sort):
        name, _, direction = spec.partition(":")
        if name not in keys or direction not in ("", "asc", "desc"):
            raise ValueError(f"cannot sort by {spec!r}")
        ordered.sort(key=keys[name], reverse=direction == "desc")
    return ordered


def _location(name: str) -> dict:
    description, country, city, latitude, longitude, _ = LOCATIONS.get(name, LOCATIONS["fsn1"])
    return {
        "id": sorted(LOCATIONS).index(name) + 1 if name in LOCATIONS else 1,
        "name": name,
        "description": description,
        "country": country,
        "city": city,
        "latitude": latitude,
        "longitude": longitude,
        "network_zone": "eu-central",
    }


def _image(snapshot: Snapshot) -> dict:
    """A Hetzner image; `snapshot.name` is its description (only system images have a name)."""
    system_name, flavor, version = SYSTEM_NAMES.get(snapshot.id, (None, "ubuntu", "24.04"))
    size = snapshot.size_gigabytes if snapshot.status == "available" and not system_name else None
    return {
        "id": snapshot.id,
        "type": snapshot.type,
        "status": snapshot.status,
        "name": system_name,
        "description": snapshot.name,
        "image_size": size,
        "disk_size": _disk_size(snapshot),
        "created": format_time(snapshot.created),
        "created_from": (
            {"id": snapshot.server_id, "name": snapshot.server_name}
            if snapshot.server_id is not None
            else None
        ),
        "bound_to": None,
        "os_flavor": flavor,
        "os_version": version,
        "rapid_deploy": system_name is not None,
        "protection": {"delete": snapshot.protected},
        "deprecated": None,
        "deleted": None,
        "labels": dict(snapshot.labels),
        "architecture": snapshot.architecture,
    }


def _disk_size(image: Snapshot) -> float:
    """The disk a server made of the image needs: 5 GB for a system image, else the disk of
    the server the snapshot was made of."""
    return 5 if image.id in SYSTEM_IMAGES else image.min_disk_gb


def _find_type(wanted: object) -> ServerType | None:
    if isinstance(wanted, str) and wanted.isdigit():
        wanted = int(wanted)
    if isinstance(wanted, int) and not isinstance(wanted, bool):
        return SERVER_TYPES_BY_ID.get(wanted)
    return SERVER_TYPES.get(wanted) if isinstance(wanted, str) else None


def _gross(net: str) -> str:
    return f"{float(net) * 1.19:.4f}"


def _server_type(kind: ServerType) -> dict:
    """A server type as `GET /server_types` lists it: a price in every location it exists in,
    whether it can be ordered there now in `locations`."""
    deprecation = dict(DEPRECATION) if kind.deprecated else None
    return {
        "id": kind.id,
        "name": kind.name,
        "description": kind.name.upper(),
        "cores": kind.cores,
        "memory": kind.memory,
        "disk": kind.disk,
        "deprecated": kind.deprecated,
        "prices": [
            {
                "location": location,
                "price_hourly": {"net": kind.price_hourly, "gross": _gross(kind.price_hourly)},
                "price_monthly": {
                    "net": kind.price_monthly,
                    "gross": _gross(kind.price_monthly),
                },
                "included_traffic": 21990232555520,
                "price_per_tb_traffic": {"net": "1.0000", "gross": "1.1900"},
            }
            for location, _ in kind.locations
        ],
        "storage_type": "local",
        "cpu_type": kind.cpu_type,
        "category": kind.category,
        "architecture": kind.architecture,
        "deprecation": deprecation,
        "locations": [
            {
                "id": _location(location)["id"],
                "name": location,
                "deprecation": deprecation,
                "recommended": available and not kind.deprecated,
                "available": available and not kind.deprecated,
            }
            for location, available in kind.locations
        ],
    }
