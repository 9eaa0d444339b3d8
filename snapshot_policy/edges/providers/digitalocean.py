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

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, TypeVar

import pydo
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.pipeline.policies import AzureKeyCredentialPolicy

from snapshot_policy.core import ownership
from snapshot_policy.core.model import (
    DIGITALOCEAN,
    START_SNAPSHOT,
    CloudSnapshot,
    MachineType,
    MadeServer,
    ProviderError,
    RateLimit,
    Server,
    ServerRequest,
    StartedSnapshot,
    Volume,
)
from snapshot_policy.edges.providers import guard
from snapshot_policy.edges.providers.guard import ERROR, RUNNING, CreateWatch
from snapshot_policy.edges.providers.paging import Listing, Page, read_all
from snapshot_policy.edges.providers.retry import (
    RetryPolicy,
    Timing,
    advised_wait,
    unreadable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
PAGE_SIZE = 200
# A droplet busy with another event answers 422 to a new action; it is worth asking again later.
BUSY = 422
# 5,000 requests an hour (the ratelimit-* headers say so), and 250 in any minute (documented,
# no header): a little under the latter, since our count and the cloud's differ by a few.
DEFAULT_LIMIT = 5000
PER_MINUTE = 240
# Pages of the account's action listing one look reads at most: a busy account (other actors
# making hundreds of actions a second) would otherwise spend the budget on it.
BUSY_PAGES = 5
POLL_PAGES = 3
CREATE_SERVER = "create droplet"
# A droplet's status in our words (MadeServer.status): `new` until it has booted.
STATUSES = {"new": "starting", "active": "running", "off": "off", "archive": "off"}
# Prices of sizes are in US dollars (DigitalOcean bills in USD).
CURRENCY = "USD"


def _budget(hourly: int, remaining: int | None = None) -> RateLimit:
    return RateLimit(hourly / 3600, hourly, remaining, per_minute=PER_MINUTE)


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
            authentication_policy=AzureKeyCredentialPolicy(
                AzureKeyCredential(token), "Authorization", prefix="Bearer"
            ),
            raw_response_hook=self._seen,
        )
        self._last = threading.local()  # this thread's latest HTTP status and request id, for _call
        self.requests = 0
        self._counting = threading.Lock()
        self._timing = timing
        self._retry = retry
        self._tags_made: set[str] = set()
        self._tag_lock = threading.Lock()
        self._newest_action: int | None = None
        self._transfers: dict[tuple[str, str], int] = {}
        self._image_created: dict[str, datetime] = {}
        """When each image of the snapshot listing was made: how far back the account's
        action listing must reach to show all its transfers."""
        """(image id, region) -> the transfer action this run started."""
        self._watch = CreateWatch(self._create_statuses)
        self.rate_limit = _budget(DEFAULT_LIMIT)
        self.unsettled: list[str] = []

    def _seen(self, response: Any) -> None:
        with self._counting:  # pages of a listing are read by several threads at once
            self.requests += 1  # every HTTP exchange, for the metrics file
        self._last.status = response.http_response.status_code
        headers = response.http_response.headers
        self._last.request_id = headers.get("x-request-id")
        limit, remaining = (
            str(headers.get("ratelimit-limit", "")),
            str(headers.get("ratelimit-remaining", "")),
        )
        if limit.isdigit() and remaining.isdigit() and int(limit):
            self.rate_limit = _budget(int(limit), int(remaining))

    def servers(self, selector: str | None = None) -> list[Server]:
        filters = {"tag_name": selector} if selector else {}
        listing = self._pages(
            "list droplets", "droplets", _server, self._client.droplets.list, **filters
        )
        return self._settled(listing, f"droplet listing{f' (tag {selector})' if selector else ''}")

    def snapshots(self, volumes: bool = False) -> list[CloudSnapshot]:
        listing = self._pages(
            "list snapshots",
            "snapshots",
            _snapshot,
            self._client.snapshots.list,
            resource_type="droplet",
        )
        found = self._settled(listing, "snapshot listing")
        self._image_created = {s.id: s.created for s in found}
        if volumes:  # volumes: true (docs/promises.md §5.18): one more listing, read alike
            listing = self._pages(
                "list volume snapshots",
                "snapshots",
                _snapshot,
                self._client.snapshots.list,
                resource_type="volume",
            )
            found += self._settled(listing, "volume snapshot listing")
        return found

    def volumes(self) -> list[Volume]:
        """The account's block storage volumes (`GET /v2/volumes`, every page, each once)."""
        listing = self._pages("list volumes", "volumes", _volume, self._client.volumes.list)
        return self._settled(listing, "volume listing")

    def start_volume_snapshot(
        self, volume_id: str, name: str, labels: Mapping[str, str]
    ) -> StartedSnapshot:
        """`POST /v2/volumes/{id}/snapshots` {name, tags}: the reply is the finished snapshot,
        carrying our tags from the start, returned as `StartedSnapshot.image` with no action
        to poll. After a lost reply the volume's own snapshot listing is read for one of
        exactly this name (not another configuration's) before the POST is ever repeated."""
        body = {"name": name, "tags": list(labels)}

        def start() -> CloudSnapshot:
            return self._call(
                START_SNAPSHOT,
                self._client.volume_snapshots.create,
                lambda reply: _snapshot(reply["snapshot"]),
                volume_id=volume_id,
                body=body,
            )

        def started_meanwhile() -> CloudSnapshot | None:
            listing = self._pages(
                "list volume snapshots",
                "snapshots",
                _snapshot,
                self._client.volume_snapshots.list,
                volume_id=volume_id,
            )
            found = [
                image
                for image in listing.items
                if image.name == name and not _foreign(image, labels)
            ]
            return max(found, key=lambda image: image.created, default=None)

        image = self._retry.start_once(
            start, started_meanwhile, lambda error: False, self._timing.creation_timeout
        )
        image = replace(
            image,
            server_id=image.server_id or volume_id,
            labels={**image.labels, **{tag: "" for tag in labels}},
            creating=False,
        )
        return StartedSnapshot(volume_id, name, None, image, dict(labels))

    def _settled(self, listing: Listing[T], what: str) -> list[T]:
        if not listing.settled:
            self.unsettled.append(
                f"DigitalOcean's {what} changed while it was read, "
                f"each of the {listing.reads} times"
            )
        return listing.items

    def busy_servers(self, since: datetime) -> dict[str, str]:
        """Return the droplets with an action in progress and its type ("snapshot" for a
        snapshot), from the account's action listing read back to the first action started
        before `since`, newest first, at most BUSY_PAGES pages. Also remember the newest action
        id: one a lost reply hides is newer than that. Raise ProviderError when the listing
        cannot tell: deeper than that, or not newest first (then the newest id is not known
        either, and each start reads its droplet's own actions)."""
        busy: dict[str, str] = {}
        newest = 0
        try:
            for actions, last in self._action_pages(BUSY_PAGES):
                for action in actions:
                    newest = newest or action.id
                    if action.status == "in-progress" and action.on_droplet:
                        busy.setdefault(action.resource_id, action.kind)  # type: ignore[arg-type]
                if last or (actions and min(action.started for action in actions) < since):
                    self._newest_action = newest
                    return busy
        except _NotNewestFirst:
            self._newest_action = None
            raise ProviderError(
                self.name,
                "list actions",
                None,
                (
                    "the account's actions are not listed newest first: "
                    "which droplets are busy is unknown"
                ),
                situation="",  # it answered, out of order
            ) from None
        self._newest_action = newest
        message = (
            f"more than {BUSY_PAGES * PAGE_SIZE} actions since {since:%Y-%m-%d %H:%M}: "
            "which droplets are busy is unknown"
        )
        raise ProviderError(self.name, "list actions", None, message, situation="")

    def start_snapshot(
        self, server_id: str, name: str, labels: Mapping[str, str]
    ) -> StartedSnapshot:
        droplet_id = int(server_id)

        def start() -> str:
            body = {"type": "snapshot", "name": name}
            return self._call(
                START_SNAPSHOT,
                self._client.droplet_actions.post,
                lambda reply: str(int(reply["action"]["id"])),
                droplet_id=droplet_id,
                body=body,
            )

        def started_meanwhile() -> str | None:
            """A snapshot action of this droplet newer than any seen before the start."""
            return next(
                (
                    str(a)
                    for kind, a, _ in self._droplet_actions(droplet_id)
                    if kind == "snapshot" and a > known
                ),
                None,
            )

        known = self._newest_action
        if (
            known is None
        ):  # the account's listing was not read: the droplet's own tells new from old
            known = max((a for _, a, _ in self._droplet_actions(droplet_id)), default=0)
        action_id = self._retry.start_once(
            start,
            started_meanwhile,
            _busy,
            self._timing.creation_timeout,
        )
        return StartedSnapshot(server_id, name, action_id, labels=dict(labels))

    def progress(
        self, started: Sequence[StartedSnapshot]
    ) -> dict[StartedSnapshot, CloudSnapshot | ProviderError | None]:
        wanted = {int(s.action_id) for s in started if s.action_id}
        statuses = self._action_statuses(wanted) if wanted else {}  # volumes' need none
        result: dict[StartedSnapshot, CloudSnapshot | ProviderError | None] = {}
        finished = []
        for snapshot in started:
            if snapshot.action_id is None and snapshot.image is not None:
                result[snapshot] = snapshot.image  # a volume's: finished with its reply
                continue
            status = statuses.get(int(snapshot.action_id or 0), "in-progress")
            if status == "completed":
                finished.append(snapshot)
            elif status != "in-progress":
                message = f"snapshot action {snapshot.action_id} for {snapshot.name} ended {status}"
                result[snapshot] = ProviderError(
                    self.name,
                    "wait for snapshot",
                    None,
                    message,
                    code="action_failed",
                    situation="",
                )
            else:
                result[snapshot] = None
        if finished:
            result.update(self._finished(finished))
        return result

    def mark_snapshot(self, snapshot_id: str, labels: Mapping[str, str]) -> None:
        self._tag([snapshot_id], labels, _resource_type(snapshot_id))

    def get_snapshot(self, snapshot_id: str) -> CloudSnapshot | None:
        """`GET /v2/snapshots/{id}` (with its tags); None for a 404 (or an id that is no
        number: droplet snapshots have numeric ids)."""
        if not snapshot_id.isdigit():
            return None
        return self._read(
            "get snapshot",
            self._client.snapshots.get,
            lambda body: _snapshot(body["snapshot"]),
            missing_ok=True,
            snapshot_id=snapshot_id,
        )

    def set_snapshot_labels(
        self, snapshot_id: str, add: Mapping[str, str], remove: Sequence[str]
    ) -> None:
        """Tag (`POST /v2/tags/{tag}/resources`) and untag (`DELETE` on the same path); a tag
        that no longer exists is not on the snapshot, which is what was asked for."""
        self._tag([snapshot_id], add)
        resources = {"resources": [{"resource_id": str(snapshot_id), "resource_type": "image"}]}
        for tag in remove:
            self._read(
                "untag snapshot",
                self._client.tags.unassign_resources,
                missing_ok=True,
                tag_id=tag,
                body=resources,
            )

    def protect_snapshot(self, snapshot_id: str, on: bool) -> None:
        raise ProviderError(
            self.name,
            "protect snapshot",
            None,
            "DigitalOcean has no delete protection for snapshots",
            code="unsupported",
            situation="",
        )

    # -- power (consistency: shutdown, docs/promises.md §5.17) ---------------------------------

    def shutdown_server(self, server_id: str) -> None:
        self._power(server_id, "shutdown")

    def power_off_server(self, server_id: str) -> None:
        self._power(server_id, "power_off")

    def power_on_server(self, server_id: str) -> None:
        self._power(server_id, "power_on")

    def _power(self, server_id: str, kind: str) -> None:
        """`POST /v2/droplets/{id}/actions {"type": kind}`, sent once: a power action repeated
        after a lost reply does no harm, but a 5xx is not retried here either (the executor
        reads the status and decides)."""
        self._call(
            f"{kind.replace('_', ' ')} droplet",
            self._client.droplet_actions.post,
            lambda reply: int(reply["action"]["id"]),
            droplet_id=int(server_id),
            body={"type": kind},
        )

    def delete_snapshot(self, snapshot_id: str) -> None:
        # A 404 means it is gone already, which is what was asked for.
        self._read(
            "delete snapshot",
            self._client.snapshots.delete,
            missing_ok=True,
            snapshot_id=snapshot_id,
        )

    # -- copies in other regions (docs/promises.md §5.15) ------------------------------------

    def transfer_snapshot(self, snapshot_id: str, region: str) -> str:
        """`POST /v2/images/{id}/actions` `{"type": "transfer", "region": …}`; the action id.
        Sent once, never repeated on a lost reply: the next poll (or the next run's look at
        the image's actions) finds a transfer that did start."""
        action_id = self._call(
            "transfer snapshot",
            self._client.image_actions.post,
            lambda reply: int(reply["action"]["id"]),
            image_id=int(snapshot_id),
            body={"type": "transfer", "region": region},
        )
        self._transfers[(snapshot_id, region)] = action_id
        return str(action_id)

    def transfers(self, snapshot_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """Image id -> region -> "in-progress", "completed" or "errored" of its transfers.
        Those this run started are read with the snapshot polls' batched action lookup (the
        account's listing, newest first); an image this run started none for (a killed run's)
        by its own action listing, one request each, the newest transfer per region."""
        wanted = set(snapshot_ids)
        found: dict[str, dict[str, str]] = {}
        started = {key: a for key, a in self._transfers.items() if key[0] in wanted}
        if started:
            statuses = self._action_statuses(set(started.values()))
            for (image_id, region), action_id in started.items():
                found.setdefault(image_id, {})[region] = statuses.get(action_id, "in-progress")
        unknown = wanted - {image for image, _ in started}
        if unknown:
            seen, unknown = self._listed_transfers(unknown)
            found.update(seen)
        for image_id in sorted(unknown):
            actions = self._read(  # pydo reads one page of it: an image has few actions
                "list image actions",
                self._client.image_actions.list,
                lambda body: [_transfer_action(item) for item in body["actions"]],
                image_id=int(image_id),
            )
            regions: dict[str, str] = {}
            for _, kind, region, status in sorted(actions):
                if kind == "transfer" and region:
                    regions[region] = status  # ascending ids: the newest wins
            found[image_id] = regions
        return found

    def _listed_transfers(self, images: set[str]) -> tuple[dict[str, dict[str, str]], set[str]]:
        """The transfers of `images` the account's action listing shows, newest first, read
        at most POLL_PAGES pages: an image made after the oldest action read (or the listing
        read to its end) has all its transfers there. Return those and the images still
        unknown (older ones, or all when the listing is not newest first)."""
        found: dict[str, dict[str, str]] = {}
        reached: datetime | None = None
        complete = False
        try:
            for actions, last in self._action_pages(POLL_PAGES):
                for action in actions:
                    if action.on_image and action.kind == "transfer" and action.region:
                        image = str(action.resource_id)
                        if image in images:
                            found.setdefault(image, {}).setdefault(action.region, action.status)
                if actions:
                    reached = min(a.started for a in actions)
                if last:
                    complete = True
                    break
        except _NotNewestFirst:
            return {}, images
        settled = {
            image
            for image in images
            if complete
            or (
                reached is not None
                and image in self._image_created
                and self._image_created[image] > reached
            )
        }
        return {image: found.get(image, {}) for image in settled}, images - settled

    # -- servers made from snapshots (restore drills, restore) ---------------------------------

    def prices(self) -> None:
        """DigitalOcean has no price endpoint: the documented price (settings.prices) stands."""
        return None

    def machine_types(self) -> list[MachineType]:
        listing = self._pages(
            "list sizes", "sizes", _size_type, self._client.sizes.list, lambda size: size.name
        )
        return listing.items  # a catalogue: a read that shifted is as good as any

    def create_server(self, request: ServerRequest) -> MadeServer:
        """`POST /v2/droplets` with pydo's retries off (it would repeat the POST on a 5xx); a
        lost reply is looked for by the droplet's exact name, and never repeated: DigitalOcean
        takes two droplets of one name."""
        image_id = guard.image_id(self.name, CREATE_SERVER, request)
        body = {
            "name": request.name,
            "region": request.region,
            "size": request.machine_type,
            "image": image_id,
            "tags": list(request.labels),  # our marks are tags: label keys, no values
            "public_networking": request.public_network,
            "ipv6": request.public_network,  # DigitalOcean refuses IPv6 without public networking
        }

        def create() -> MadeServer:
            made, action_id = self._call(
                CREATE_SERVER, self._client.droplets.create, _created, body=body
            )
            if action_id is not None:
                self._watch.watch(made.id, [action_id])
            return made

        return self._retry.create_once(
            create,
            lambda: self._made_named(request),
            name_taken=lambda error: False,
            unique_names=False,
        )

    def _made_named(self, request: ServerRequest) -> MadeServer | None:
        """The droplet named exactly `request.name` carrying every tag of the request, if one
        exists (the newest, should there be several)."""
        listing = self._pages(
            "list droplets", "droplets", _made, self._client.droplets.list, name=request.name
        )
        found = [
            server
            for server in listing.items
            if server.name == request.name
            and {tag.lower() for tag in request.labels} <= {tag.lower() for tag in server.labels}
        ]
        return max(found, key=lambda server: int(server.id), default=None)

    def drill_servers(self) -> list[MadeServer]:
        listing = self._pages(
            "list drill droplets",
            "droplets",
            _made,
            self._client.droplets.list,
            tag_name=ownership.DRILL_TAG,
        )
        return self._watch.marked(guard.drill_listing(self.name, "list drill droplets", listing))

    def get_server(self, server_id: str) -> MadeServer | None:
        made = self._read_droplet(server_id)
        return None if made is None else self._watch.marked([made])[0]

    def _read_droplet(self, server_id: str) -> MadeServer | None:
        """`GET /v2/droplets/{id}`: the droplet as it is now, None when there is none."""
        return self._read(
            "get droplet",
            self._client.droplets.get,
            lambda body: _made(body["droplet"]),
            missing_ok=True,
            droplet_id=guard.server_number(self.name, "get droplet", server_id),
        )

    def delete_drill_server(self, server: MadeServer, owner: str) -> None:
        def destroy(server_id: str) -> None:
            self._read(
                "delete droplet",
                self._client.droplets.destroy,
                missing_ok=True,
                droplet_id=guard.server_number(self.name, "delete droplet", server_id),
            )

        guard.delete_drill_server(self.name, server, owner, self._read_droplet, destroy)
        self._watch.forget(server.id)

    def _create_statuses(self, action_ids: list[int]) -> dict[int, str]:
        """The create actions' statuses in CreateWatch's words (`_action_statuses`)."""
        words = {"in-progress": RUNNING, "errored": ERROR}
        found = self._action_statuses(set(action_ids))
        return {action_id: words.get(status, status) for action_id, status in found.items()}

    def _droplet_actions(self, droplet_id: int) -> list[tuple[Any, int, str]]:
        return self._pages(
            "list droplet actions",
            "actions",
            _action,
            self._client.droplet_actions.list,
            lambda action: action[1],
            droplet_id=droplet_id,
        ).items

    def _action_statuses(self, wanted: set[int]) -> dict[int, str]:
        """The status of each action in `wanted`: from the account's action listing, newest
        first, read at most POLL_PAGES pages and only as far back as the oldest wanted, while
        that costs fewer requests than reading the rest one by one; the rest one by one."""
        found: dict[int, str] = {}
        try:
            for read, (actions, last) in enumerate(self._action_pages(POLL_PAGES), 1):
                found.update(
                    (action.id, action.status) for action in actions if action.id in wanted
                )
                missing = wanted - found.keys()
                if (
                    last
                    or not actions
                    or actions[-1].id < min(missing, default=0)
                    or len(missing) <= POLL_PAGES - read
                ):
                    break
        except _NotNewestFirst:
            pass  # what was read is true; the rest is read one by one
        for action_id in sorted(wanted - found.keys()):
            found[action_id] = self._read(
                "get action",
                self._client.actions.get,
                lambda body: _action_status(body["action"]),
                action_id=action_id,
            )
        return found

    def _action_pages(self, limit: int) -> Iterator[tuple[list[_ListedAction], bool]]:
        """The pages of the account's action listing, each action once (newer ones push older
        ones onto the next page), at most `limit` of them, with whether each is the last.
        Raise _NotNewestFirst where the ids do not descend: nothing the API promises."""
        seen: set[int] = set()
        lowest: int | None = None
        for page in range(1, limit + 1):
            items, more = self._read(
                "list actions",
                self._client.actions.list,
                _action_page,
                page=page,
                per_page=PAGE_SIZE,
            )
            fresh = []
            for item in items:
                if item.id in seen:
                    continue
                if lowest is not None and item.id > lowest:
                    raise _NotNewestFirst
                seen.add(item.id)
                lowest = item.id
                fresh.append(item)
            yield fresh, not more or not items
            if not more or not items:
                return

    def _finished(
        self, finished: Sequence[StartedSnapshot]
    ) -> dict[StartedSnapshot, CloudSnapshot | ProviderError]:
        """The finished actions do not name their images: find them by droplet and exact name
        in the account's snapshot listing, newest pages first, then tag them all at once."""
        images = self._images_named({(s.server_id, s.name): s.labels for s in finished})
        result: dict[StartedSnapshot, CloudSnapshot | ProviderError] = {}
        for snapshot in finished:
            image = images.get((snapshot.server_id, snapshot.name))
            if image is None:
                message = (
                    f"snapshot {snapshot.name} finished "
                    f"but droplet {snapshot.server_id} does not list it"
                )
                result[snapshot] = ProviderError(
                    self.name, "find new snapshot", None, message, situation=""
                )
            else:
                result[snapshot] = replace(
                    image, labels={**image.labels, **{tag: "" for tag in snapshot.labels}}
                )
        by_labels: dict[tuple[str, ...], list[StartedSnapshot]] = {}
        for snapshot in finished:
            if isinstance(result[snapshot], CloudSnapshot):
                by_labels.setdefault(tuple(snapshot.labels), []).append(
                    snapshot
                )  # in marker_labels' order: the owner first
        for tags, group in by_labels.items():
            try:
                self._tag([result[s].id for s in group], tags)  # type: ignore[union-attr]
            except ProviderError as error:
                result.update((s, error) for s in group)
        return result

    def _images_named(
        self, wanted: Mapping[tuple[str, str], Mapping[str, str]]
    ) -> dict[tuple[str, str], CloudSnapshot]:
        """The newest image of each (droplet id, name) in `wanted` that the account lists, never
        one marked by an owner its start's labels (the values of `wanted`) lack: another
        configuration's image of the same name is not ours to mark (docs/promises.md §5).

        New snapshots are listed at one end: the first page is read (it also gives the total),
        then the pages from the last one back, until every name is found on those; a match on
        the first page alone ends nothing, as ours may be on a later one (another
        configuration's image of the droplet, made in the same second, has the same name). Any
        other order is still read in full, never taken for an absence."""
        found: dict[tuple[str, str], CloudSnapshot] = {}
        foreign: set[str] = set()  # ids of images marked by another configuration
        from_the_end: set[tuple[str, str]] = set()

        def take(body: Any, seen: set[tuple[str, str]]) -> int:
            for image in (_snapshot(i) for i in body["snapshots"]):
                key = (image.server_id or "", image.name)
                if key not in wanted:
                    continue
                if _foreign(image, wanted[key]):
                    foreign.add(image.id)
                    continue
                seen.add(key)
                if key not in found or _later(image, found[key]):
                    found[key] = image
            return int(body["meta"]["total"])

        total = self._read(
            "list snapshots",
            self._client.snapshots.list,
            lambda body: take(body, set()),
            resource_type="droplet",
            page=1,
            per_page=PAGE_SIZE,
        )
        for page in range(-(-total // PAGE_SIZE), 1, -1):
            if len(from_the_end) == len(wanted):
                break
            self._read(
                "list snapshots",
                self._client.snapshots.list,
                lambda body: take(body, from_the_end),
                resource_type="droplet",
                page=page,
                per_page=PAGE_SIZE,
            )
        for droplet_id in sorted({droplet for droplet, _ in wanted.keys() - found.keys()}):
            # The listing shifted between its pages (a snapshot deleted or added before the read
            # position): the droplet's own listing is asked before calling an image missing.
            # It names no tags: an image the account's listing showed marked by another
            # configuration stays out.
            for image in self._droplet_snapshots(droplet_id):
                key = (droplet_id, image.name)
                if (
                    key in wanted
                    and image.id not in foreign
                    and (key not in found or _later(image, found[key]))
                ):
                    found[key] = image
        return found

    def _droplet_snapshots(self, droplet_id: str) -> list[CloudSnapshot]:
        """The droplet's own snapshots (this listing names no tags)."""

        def convert(item: Any) -> CloudSnapshot:
            return _droplet_snapshot(item, droplet_id)

        return self._pages(
            "list droplet snapshots",
            "snapshots",
            convert,
            self._client.droplets.list_snapshots,
            droplet_id=int(droplet_id),
        ).items

    def _tag(
        self, image_ids: Sequence[str], tags: Iterable[str], resource_type: str = "image"
    ) -> None:
        """Tag the images (or volume snapshots) with each of `tags` (label keys: DigitalOcean
        tags carry no value), one request per tag for all of them."""
        resources = {
            "resources": [
                {"resource_id": str(image_id), "resource_type": resource_type}
                for image_id in image_ids
            ]
        }
        for tag in tags:
            with self._tag_lock:  # create each tag once per run
                if tag not in self._tags_made:
                    self._read("create tag", self._client.tags.create, body={"name": tag})
                    self._tags_made.add(tag)
            self._read(
                "tag snapshot", self._client.tags.assign_resources, tag_id=tag, body=resources
            )

    def _pages(
        self,
        operation: str,
        key: str,
        convert: Callable[[Any], T],
        method: Callable[..., Any],
        identity: Callable[[T], Any] = lambda item: item.id,
        **params: Any,
    ) -> Listing[T]:
        """Every item of a paginated listing once, each read by `convert`: page by page while
        each links a next one, each page under `_read`, several at a time once the first has
        told how many there are (`meta.total`), read again while it shifts (paging.py)."""

        def read(page: int) -> Page[T]:
            def page_of(body: Any) -> Page[T]:
                pages = (body.get("links") or {}).get("pages") or {}
                items = [convert(item) for item in body[key]]
                return (
                    items,
                    page + 1 if pages.get("next") else None,
                    _last_page(body),
                    _total(body),
                )

            return self._read(operation, method, page_of, page=page, per_page=PAGE_SIZE, **params)

        return read_all(read, identity)

    def _read(
        self,
        operation: str,
        method: Callable[..., Any],
        read: Callable[[Any], T] = lambda body: body,
        missing_ok: bool = False,
        **params: Any,
    ) -> T:
        """`_call`, retried while transient."""
        return self._retry.call(lambda: self._call(operation, method, read, missing_ok, **params))

    def _call(
        self,
        operation: str,
        method: Callable[..., Any],
        read: Callable[[Any], T] = lambda body: body,
        missing_ok: bool = False,
        **params: Any,
    ) -> T:
        """Call pydo once and return `read(body)` of its 2xx reply (None for a 404 with
        `missing_ok`). Raise ProviderError for any failure: a refusal DigitalOcean states, with
        its status; anything that came back but could not be understood as UncertainOutcome."""
        self._last.status = self._last.request_id = None
        try:
            status, body = method(
                **params,
                cls=lambda response, body, headers: (response.http_response.status_code, body),
            )
        except HttpResponseError as error:
            response = error.response
            headers = response.headers if response is not None else {}
            raise self._refusal(
                operation, error.status_code, _json(response), error.reason, advised_wait(headers)
            ) from None
        except AzureError as error:
            raise ProviderError(
                self.name, operation, None, type(error).__name__ + ": " + str(error.message)
            ) from None
        except (
            Exception
        ) as error:  # pydo could not read the reply (not JSON, a header of the wrong type)
            last = self._last
            raise unreadable(self.name, operation, last.status, error, last.request_id) from None
        if missing_ok and status == 404 and _is_error(body):
            return None  # type: ignore[return-value]
        if not 200 <= status < 300:
            raise self._refusal(operation, status, body, None, None)
        try:
            return read(body)
        except Exception as error:  # a reply without what the operation returns
            raise unreadable(self.name, operation, status, error, self._last.request_id) from None

    def _refusal(
        self, operation: str, status: int | None, body: Any, reason: str | None, wait: float | None
    ) -> ProviderError:
        """The error for a non-2xx reply: certain only when it is a 4xx with DigitalOcean's
        error body; a temporary status is retried; anything else was not understood."""
        request_id = _request_id(body) or self._last.request_id
        message = _message(body, reason)
        failure = ProviderError(self.name, operation, status, message, wait, request_id=request_id)
        if failure.transient or (status is not None and 400 <= status < 500 and _is_error(body)):
            return failure
        if status is not None and 200 <= status < 300:
            problem = "its body could not be read"
            return unreadable(self.name, operation, status, problem, request_id)
        problem = f"an HTTP {status} without DigitalOcean's error body"
        return unreadable(self.name, operation, status, problem, request_id)


def _busy(error: ProviderError) -> bool:
    """A 422 to a snapshot action means the droplet is busy ("Droplet already has a pending
    event."), worth asking again later — unless it speaks of a limit (the account's snapshot
    limit: DigitalOcean answers 422 in its own words), which no later ask can pass."""
    words = error.message.lower()
    return error.status == BUSY and not any(w in words for w in ("limit", "maximum", "quota"))


def _last_page(body: Any) -> int | None:
    """The number of pages of PAGE_SIZE a listing's `meta.total` makes, or None if it does not
    say (the listing is then read one page at a time, as its links lead)."""
    total = _total(body)
    return None if total is None else -(-total // PAGE_SIZE)


def _total(body: Any) -> int | None:
    meta = body.get("meta")
    total = meta.get("total") if isinstance(meta, dict) else None
    return total if type(total) is int and total >= 0 else None


def _is_error(body: Any) -> bool:
    """True for DigitalOcean's error body, `{"id": ..., "message": ...}`."""
    return (
        isinstance(body, dict)
        and isinstance(body.get("id"), str)
        and isinstance(body.get("message"), str)
    )


def _json(response: Any) -> Any:
    try:
        return response.json()
    except Exception:  # noqa: BLE001 - any body that is not JSON (or no response at all)
        return None


def _request_id(body: Any) -> str | None:
    """The `request_id` of DigitalOcean's error body, when it names the request."""
    request_id = body.get("request_id") if isinstance(body, dict) else None
    return request_id if isinstance(request_id, str) and request_id else None


def _message(body: Any, fallback: str | None) -> str:
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return fallback or "no message"


def _server(droplet: dict[str, Any]) -> Server:
    named = droplet.get("snapshot_ids")
    snapshot_ids = tuple(str(int(i)) for i in named) if isinstance(named, list) else None
    return Server(
        str(droplet["id"]),
        str(droplet["name"]),
        {str(tag): "" for tag in droplet.get("tags") or []},
        snapshot_ids,
        region=_region_slug(droplet),
        volume_ids=tuple(str(v) for v in droplet.get("volume_ids") or []),
        status=droplet.get("status") if isinstance(droplet.get("status"), str) else None,
    )


def _volume(item: dict[str, Any]) -> Volume:
    """A volume of `GET /v2/volumes`: the droplets it is attached to, its region and size."""
    return Volume(
        id=str(item["id"]),
        name=str(item["name"]),
        region=_region_slug(item),
        droplet_ids=tuple(str(int(d)) for d in item.get("droplet_ids") or []),
        size_gb=_size(item.get("size_gigabytes")),
    )


def _resource_type(snapshot_id: str) -> str:
    """How the tags API names a snapshot: a droplet snapshot's id is a number ("image"), a
    volume snapshot's a UUID ("volume_snapshot")."""
    return "image" if snapshot_id.isdigit() else "volume_snapshot"


def _region_slug(droplet: dict[str, Any]) -> str | None:
    region = droplet.get("region")
    slug = region.get("slug") if isinstance(region, dict) else None
    return slug if isinstance(slug, str) and slug else None


def _made(droplet: dict[str, Any]) -> MadeServer:
    """A droplet in our words: its status mapped (STATUSES; an unknown one is "starting"), its
    first private and public IPv4 (else public IPv6) address."""
    networks = droplet.get("networks") or {}

    def address(version: str, kind: str) -> str | None:
        return next(
            (
                str(net["ip_address"])
                for net in networks.get(version) or []
                if net.get("type") == kind and net.get("ip_address")
            ),
            None,
        )

    image = droplet.get("image")
    image_id = image.get("id") if isinstance(image, dict) else None
    created = droplet.get("created_at")
    return MadeServer(
        id=str(int(droplet["id"])),
        name=str(droplet["name"]),
        status=STATUSES.get(str(droplet.get("status")), "starting"),
        region=_region_slug(droplet),
        labels={str(tag): "" for tag in droplet.get("tags") or []},
        private_ip=address("v4", "private"),
        public_ip=address("v4", "public") or address("v6", "public"),
        image_id=None if image_id is None else str(image_id),
        created=_time(created) if isinstance(created, str) and created else None,
    )


def _created(body: dict[str, Any]) -> tuple[MadeServer, int | None]:
    """The droplet of a `POST /v2/droplets` reply and the id of its create action (in
    `links.actions`, rel "create"), if the reply names one."""
    links = body.get("links") or {}
    action_id = next(
        (
            int(link["id"])
            for link in links.get("actions") or []
            if link.get("rel") == "create" and link.get("id") is not None
        ),
        None,
    )
    return _made(body["droplet"]), action_id


def _size_type(size: dict[str, Any]) -> MachineType:
    """A size of `GET /v2/sizes`: its disk, where it can be made, its hourly price."""
    return MachineType(
        name=str(size["slug"]),
        disk_gb=float(size["disk"]),
        regions=tuple(str(region) for region in size.get("regions") or []),
        price_hourly=float(size["price_hourly"]),
        currency=CURRENCY,
        architecture="x86",
        available=bool(size.get("available", True)),
    )


def _action(item: dict[str, Any]) -> tuple[Any, int, str]:
    """(type, id, status) of an action; the API's description makes status default to
    in-progress."""
    return item.get("type"), int(item["id"]), str(item.get("status", "in-progress"))


def _transfer_action(item: dict[str, Any]) -> tuple[int, str, str, str]:
    """(id, type, region slug, status) of an image action: a transfer's region is where the
    image is copied to."""
    return int(item["id"]), str(item.get("type")), _action_region(item), _action_status(item)


def _action_region(item: dict[str, Any]) -> str:
    region = item.get("region_slug")
    if not isinstance(region, str):
        named = item.get("region")
        region = named.get("slug") if isinstance(named, dict) else None
    return region if isinstance(region, str) else ""


class _NotNewestFirst(Exception):
    """The account's action listing did not list its actions newest first (ids descending)."""


@dataclass(frozen=True)
class _ListedAction:
    id: int
    kind: str
    status: str
    resource_id: str | None
    on_droplet: bool
    started: datetime
    on_image: bool = False
    region: str = ""


def _action_page(body: Any) -> tuple[list[_ListedAction], bool]:
    """One page of the account's actions, and whether another follows."""
    pages = (body.get("links") or {}).get("pages") or {}
    items = [
        _ListedAction(
            int(a["id"]),
            str(a.get("type")),
            _action_status(a),
            None if a.get("resource_id") is None else str(a["resource_id"]),
            a.get("resource_type") == "droplet" and a.get("resource_id") is not None,
            _started(a),
            a.get("resource_type") == "image" and a.get("resource_id") is not None,
            _action_region(a),
        )
        for a in body["actions"]
    ]
    return items, bool(pages.get("next"))


def _started(action: dict[str, Any]) -> datetime:
    """When an action started; one without a time is taken as the newest."""
    return (
        _time(action["started_at"])
        if action.get("started_at")
        else datetime.max.replace(tzinfo=timezone.utc)
    )


def _action_status(action: dict[str, Any]) -> str:
    """An action's status, one of those the API documents; ValueError for any other."""
    status = action.get("status", "in-progress")
    if status not in ("in-progress", "completed", "errored"):
        raise ValueError(f"action status {status!r} is none of in-progress, completed, errored")
    return status


def _droplet_snapshot(item: dict[str, Any], droplet_id: str) -> CloudSnapshot:
    """An item of a droplet's own snapshot listing, which names no droplet and no tags."""
    return CloudSnapshot(
        str(item["id"]),
        item["name"],
        _time(item["created_at"]),
        droplet_id,
        {},
        size_gb=_size(item.get("size_gigabytes")),
        min_disk_gb=_size(item.get("min_disk_size")),
        regions=_regions(item),
    )


def _snapshot(item: dict[str, Any]) -> CloudSnapshot:
    return CloudSnapshot(
        id=str(item["id"]),
        name=item["name"],
        created=_time(item["created_at"]),
        server_id=str(item["resource_id"]) if item.get("resource_id") is not None else None,
        labels={tag: "" for tag in item.get("tags") or []},
        size_gb=_size(item.get("size_gigabytes")),
        min_disk_gb=_size(item.get("min_disk_size")),
        regions=_regions(item),
    )


def _regions(item: dict[str, Any]) -> tuple[str, ...]:
    """The regions a snapshot is in (where a droplet can be made from it)."""
    return tuple(str(region) for region in item.get("regions") or [])


def _size(value: Any) -> float | None:
    """`size_gigabytes`, the billed size (not `min_disk_size`, the disk a restore needs);
    None when the reply lacks it or it is no number."""
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
        else None
    )


def _time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (
        moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
    )  # RFC 3339 wants an offset


def _later(image: CloudSnapshot, other: CloudSnapshot) -> bool:
    """Whether `image` was made after `other`. Two snapshots of one droplet with one name
    (two configurations in the same second) share a `created_at` to the second; a droplet
    makes one at a time, so the later one has the higher id."""

    def number(snapshot: CloudSnapshot) -> int:
        return int(snapshot.id) if snapshot.id.isdigit() else -1

    return (image.created, number(image)) > (other.created, number(other))


def _foreign(image: CloudSnapshot, labels: Mapping[str, str]) -> bool:
    """Whether `image` carries an owner tag that `labels` (a start's marks) lack: another
    configuration's image (tags compared regardless of case, as DigitalOcean does)."""
    prefix = ownership.OWNER_TAG_PREFIX.lower()
    ours = {tag.lower() for tag in labels}
    return any(tag.lower().startswith(prefix) and tag.lower() not in ours for tag in image.labels)
