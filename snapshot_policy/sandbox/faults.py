"""Fault injection: make chosen requests fail the way real clouds and networks fail.

A fault matches requests by service (`digitalocean`, `hetzner`, `telegram`, `webhook`, or any),
HTTP method and a regular expression searched in the path. It fires for the next `count`
matching requests (None: no limit), each time with `probability` drawn from its own seeded
random generator, so a flaky-network test is repeatable. Kinds:

- `rate_limit`: 429 with the service's own body and headers, saying one request is free again
  after `retry_after` seconds the way the service says it: `Retry-After` (DigitalOcean, the
  webhook sink; Telegram's `retry_after`), or — Hetzner, which documents no Retry-After —
  `RateLimit-Remaining: 0` and a `RateLimit-Reset` (when the whole budget is back, refilled
  evenly) `retry_after × RateLimit-Limit` seconds after the reply's `Date`.
- `error`: HTTP `status` (default 500; 502/503/504 too) with the service's error body.
- `delay`: wait `seconds`, then answer normally (other faults may still apply).
- `drop`: close the connection without answering.
- `lose_reply`: do what the request asks, then close the connection without answering — the
  case where a client cannot know whether its POST took effect.
- `garble`: do what the request asks, then answer with its status and headers but a body cut
  short, which is not JSON — a reply whose meaning cannot be known.
- `patch`: answer normally, with `patch` merged into the JSON body (RFC 7386: a key set to
  null is removed). For data an SDK may not expect — keys the API's description leaves open,
  such as extra ones in Hetzner's `meta.pagination` — or a reply without what it must carry.
- `fail_action`: not about requests: the next snapshot action started on the matching
  service (and `server_id`, if given) ends in error.
- `transfer_fail`: not about requests: the next DigitalOcean image transfer (to a region the
  regular expression `name` is found in, if given) ends `errored`; the image gains no copy.
- `boot_fail`: not about requests: the next server created on the matching service (whose name
  the regular expression `name` is found in, if given) does not boot: its create action ends
  in error (DigitalOcean `errored`, Hetzner `error`, and its start_server too) and the server
  stays `off`. It still exists, and must be deleted.
- `ignore_shutdown`: not about requests: the guest of the next server (`server_id`, if
  given) asked to shut down gracefully on the matching service ignores it and keeps running;
  only a power off stops it (consistency: shutdown with `force`).
- `fail_power_on`: not about requests: the next power on of a server (`server_id`, if given)
  on the matching service ends in error (DigitalOcean `errored`, Hetzner `error`); it stays off.
- `slow_boot`: not about requests: the next server created on the matching service (and
  `name`) boots for `seconds` instead of its account's `boot_seconds`.
- A lost reply to a create (the server is made, the client never hears of it) is `lose_reply`
  on `POST` `^/v2/droplets$` or `^/v1/servers$`; a delete that fails is `error` on `DELETE`
  `^/v2/droplets/[0-9]+$` or `^/v1/servers/[0-9]+$` (the server stays).
- `shift`: answer normally, then change the account's list between two page reads, as
  other actors do: once page `page` (any page, if None) of a matching request was served,
  `insert` new items and delete the items whose ids are in `delete`. The items are snapshots,
  or servers with `resource: "servers"`; new snapshots belong to `server_id` (None: to no
  server), and take the ids in `ids` not yet used, in order, else the next ids (the newest).
  A page-1 read of another listing does not match if `path` says which (e.g. `/v2/snapshots$`).
  Other faults may still apply to the same request.

Any kind that answers also takes `patch`, merged into its reply's body (e.g. an `error` whose
body lacks the API's error fields), and `headers`, set on its reply last (e.g.
`{"Retry-After": "8"}` on a Hetzner 429).
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from dataclasses import asdict, dataclass, field

KINDS = (
    "rate_limit",
    "error",
    "delay",
    "drop",
    "lose_reply",
    "garble",
    "patch",
    "fail_action",
    "shift",
    "boot_fail",
    "slow_boot",
    "transfer_fail",
    "ignore_shutdown",
    "fail_power_on",
)
# Faults about what the cloud does later, not about a request: never answer one.
NOT_REQUESTS = (
    "fail_action",
    "boot_fail",
    "slow_boot",
    "transfer_fail",
    "ignore_shutdown",
    "fail_power_on",
)
RESOURCES = ("snapshots", "servers")
# Faults that change nothing of the answer itself: they fire alongside another one.
ALONGSIDE = ("delay", "shift")
SERVICES = ("digitalocean", "hetzner", "telegram", "webhook")


@dataclass
class Fault:
    kind: str
    service: str | None = None
    method: str | None = None
    path: str | None = None
    count: int | None = 1
    probability: float = 1.0
    seed: int | None = None
    status: int = 500
    retry_after: float = 1
    seconds: float = 0.0
    server_id: int | None = None
    headers: dict[str, str] | None = None
    patch: dict | None = None
    page: int | None = None
    insert: int = 0
    delete: list[int] | None = None
    ids: list[int] | None = None
    resource: str = "snapshots"
    name: str | None = None
    id: int = 0
    fired: int = 0
    _random: random.Random = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}, not {self.kind!r}")
        if self.service is not None and self.service not in SERVICES:
            raise ValueError(f"fault service must be one of {SERVICES}, not {self.service!r}")
        for pattern in (self.path, self.name):
            if pattern is not None:
                re.compile(pattern)
        if self.resource not in RESOURCES:
            raise ValueError(f"a shift changes one of {RESOURCES}, not {self.resource!r}")
        if not isinstance(self.insert, int) or self.insert < 0:
            raise ValueError("insert must be a number of new items, 0 or more")
        if not all(isinstance(i, int) for i in [*(self.delete or []), *(self.ids or [])]):
            raise ValueError("delete and ids must be lists of integer ids")
        if self.kind == "patch" and not isinstance(self.patch, dict):
            raise ValueError("a patch fault needs `patch`, a JSON object to merge into the reply")
        if self.headers is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.headers.items()
        ):
            raise ValueError("fault headers must map names to strings")
        self._random = random.Random(self.seed)

    def public(self) -> dict:
        data = asdict(self)
        data.pop("_random", None)
        return data

    def _matches(self, service: str, method: str, path: str, page: int) -> bool:
        return (
            (self.service is None or self.service == service)
            and (self.method is None or self.method.upper() == method.upper())
            and (self.path is None or re.search(self.path, path) is not None)
            and (self.page is None or self.page == page)
        )

    def _fire(self) -> bool:
        if self.count is not None and self.fired >= self.count:
            return False
        if self.probability < 1 and self._random.random() >= self.probability:
            return False
        self.fired += 1
        return True


def merge_patch(target: object, patch: object) -> object:
    """Return `target` with the JSON merge patch `patch` applied (RFC 7386)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


class Faults:
    """The active faults, in the order they were added; thread-safe."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def add(self, kind: str, **options) -> Fault:
        fault = Fault(kind, **options)
        with self._lock:
            fault.id = next(self._ids)
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict]:
        with self._lock:
            return [f.public() for f in self._faults]

    def for_request(self, service: str, method: str, path: str, page: int = 1) -> list[Fault]:
        """The faults that fire for this request (`page`: the page it asks for): any delays and
        shifts, then at most one other fault, last."""
        fired: list[Fault] = []
        with self._lock:
            for fault in self._faults:
                if fault.kind in NOT_REQUESTS or not fault._matches(service, method, path, page):
                    continue
                if fault._fire():
                    fired.append(fault)
                    if fault.kind not in ALONGSIDE:
                        break
        return fired

    def action_fails(self, service: str, server_id: int, kind: str = "fail_action") -> bool:
        """Consume a matching `fail_action` fault for a new snapshot action, if there is one
        (or, by `kind`, an `ignore_shutdown` or `fail_power_on` for a power action)."""
        with self._lock:
            for fault in self._faults:
                if (
                    fault.kind == kind
                    and fault.service in (None, service)
                    and fault.server_id in (None, server_id)
                    and fault._fire()
                ):
                    return True
        return False

    def transfer_fails(self, service: str, region: str) -> bool:
        """Consume a matching `transfer_fail` fault for a new image transfer, if there is one."""
        with self._lock:
            for fault in self._faults:
                if (
                    fault.kind == "transfer_fail"
                    and fault.service in (None, service)
                    and (fault.name is None or re.search(fault.name, region) is not None)
                    and fault._fire()
                ):
                    return True
        return False

    def boot(self, service: str, name: str) -> tuple[bool, float | None]:
        """Consume the matching `boot_fail` and `slow_boot` faults for a new server named
        `name`: (whether its boot fails, how long it boots; None: as usual)."""
        fails, seconds = False, None
        with self._lock:
            for fault in self._faults:
                if (
                    fault.kind not in ("boot_fail", "slow_boot")
                    or fault.service not in (None, service)
                    or (fault.name is not None and re.search(fault.name, name) is None)
                ):
                    continue
                if fault.kind == "boot_fail" and not fails and fault._fire():
                    fails = True
                elif fault.kind == "slow_boot" and seconds is None and fault._fire():
                    seconds = fault.seconds
        return fails, seconds
