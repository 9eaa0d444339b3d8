"""The clouds, behind one small interface: servers, the account's snapshots, start a snapshot
and follow many at once, delete; and for restore drills, make a server from a snapshot, follow
the drill servers, and delete one of them (never any other server).

Adapters translate the official SDKs (pydo, hcloud) to our types and every SDK failure to
ProviderError. They make no decisions: what to create or delete is the reconciler's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Protocol

from snapshot_policy.core import transport
from snapshot_policy.core.model import (
    DIGITALOCEAN,
    HETZNER,
    Account,
    CloudSnapshot,
    MachineType,
    MadeServer,
    Price,
    ProviderError,
    RateLimit,
    Server,
    ServerRequest,
    StartedSnapshot,
    Volume,
)
from snapshot_policy.edges.providers.digitalocean import DigitalOcean
from snapshot_policy.edges.providers.hetzner import Hetzner
from snapshot_policy.edges.providers.retry import RetryPolicy, Timing

# Each ecosystem's usual variable and form (docs/promises.md §9): pydo's endpoint has no /v2;
# hcloud's has /v1.
ENDPOINT_VARIABLES = {DIGITALOCEAN: "DIGITALOCEAN_API_URL", HETZNER: "HCLOUD_ENDPOINT"}
DEFAULT_ENDPOINTS = {
    DIGITALOCEAN: "https://api.digitalocean.com",
    HETZNER: "https://api.hetzner.cloud/v1",
}
ADAPTERS = {DIGITALOCEAN: DigitalOcean, HETZNER: Hetzner}
# What `connect` waits and retries with unless told otherwise: frozen, so one of each serves all.
DEFAULT_TIMING = Timing()
DEFAULT_RETRY = RetryPolicy()


class Provider(Protocol):
    name: str
    requests: int
    """HTTP requests made so far, retries and pages included."""
    rate_limit: RateLimit
    """The account's documented pace, with the remaining budget its last reply reported."""
    unsettled: list[str]
    """Listings of this run that changed while read, even after re-reading: the account's
    deletions must be withheld. One sentence each, naming the listing and the cloud."""

    def servers(self, selector: str | None = None) -> list[Server]:
        """Return the account's servers, or those matching a label selector (Hetzner) or
        carrying a tag (DigitalOcean), from one paginated listing, each once; a listing that
        changed while it was read is read again, and named in `unsettled` if it kept changing."""

    def snapshots(self, volumes: bool = False) -> list[CloudSnapshot]:
        """Return every server snapshot of the account, from one paginated listing, each once;
        read again and named in `unsettled` as `servers` is. With `volumes` (DigitalOcean),
        also every volume snapshot, from one more listing, `server_id` its volume's id."""

    def volumes(self) -> list[Volume]:
        """DigitalOcean: the account's block storage volumes, from one paginated listing, each
        once; read again and named in `unsettled` as `servers` is."""

    def start_volume_snapshot(
        self, volume_id: str, name: str, labels: Mapping[str, str]
    ) -> StartedSnapshot:
        """DigitalOcean: snapshot a volume, carrying `labels` (tags) from the start; the reply
        is the finished snapshot (`StartedSnapshot.image`, no action). A lost reply is looked
        for by name in the volume's snapshots before the request is ever repeated."""

    def busy_servers(self, since: datetime) -> dict[str, str]:
        """Return server id -> the kind of its action in progress ("snapshot" for a snapshot,
        else the cloud's own action type, e.g. "resize", "power_off"), from one account-wide
        listing of actions (DigitalOcean's read back to actions started at `since`, a few
        pages at most). Raise ProviderError when the listing cannot tell."""

    def start_snapshot(
        self, server_id: str, name: str, labels: Mapping[str, str]
    ) -> StartedSnapshot:
        """Ask for a snapshot of the server that will carry `labels` (ownership.marker_labels)
        and return without waiting. After a lost reply, look for the snapshot it may have
        started before ever asking again. A busy server's refusal is raised at once as
        retry.ServerBusy: the executor asks again later, holding no request slot."""

    def progress(
        self, started: Sequence[StartedSnapshot]
    ) -> dict[StartedSnapshot, CloudSnapshot | ProviderError | None]:
        """One round of waiting for all of `started`, in a few batched requests whatever their
        number: each finished one as listed and marked, a failed one as its error, None
        while it runs."""

    def shutdown_server(self, server_id: str) -> None:
        """Ask the server's guest to shut down gracefully (ACPI) and return at once: the cloud
        only sends the request, so whether it went off is read from `servers()` (`status`)."""

    def power_off_server(self, server_id: str) -> None:
        """Cut the server's power (consistency: shutdown with `force`), returning at once."""

    def power_on_server(self, server_id: str) -> None:
        """Power the server on, returning at once; `servers()` says when it runs again."""

    def mark_snapshot(self, snapshot_id: str, labels: Mapping[str, str]) -> None:
        """Add `labels` to a snapshot this tool made but could not mark (journal.py)."""

    def delete_snapshot(self, snapshot_id: str) -> None:
        """Delete a snapshot; one that is already gone counts as deleted."""

    def get_snapshot(self, snapshot_id: str) -> CloudSnapshot | None:
        """Return one snapshot as the cloud describes it now (with its labels or tags); None
        when the account has no such snapshot (issue 23, item 2: pin, unpin, undelete)."""

    def set_snapshot_labels(
        self, snapshot_id: str, add: Mapping[str, str], remove: Sequence[str]
    ) -> None:
        """Add `add` to a snapshot's labels and take `remove` off (Hetzner: read the labels,
        write the merged set; DigitalOcean: tag and untag, `add`'s keys being tags)."""

    def protect_snapshot(self, snapshot_id: str, on: bool) -> None:
        """Set or lift a snapshot's delete protection (Hetzner change_protection). Raise
        ProviderError where the cloud has none (DigitalOcean)."""

    def transfer_snapshot(self, snapshot_id: str, region: str) -> str:
        """Start copying a snapshot to another region (DigitalOcean's image transfer) and
        return the action's id without waiting. Hetzner has no such API: ProviderError."""

    def transfers(self, snapshot_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """One batched look at the transfers of `snapshot_ids`: snapshot id -> region ->
        "in-progress", "completed" or "errored" (docs/promises.md §5.15)."""

    def machine_types(self) -> list[MachineType]:
        """Return what a server can be made as (DigitalOcean's sizes, Hetzner's server types),
        from one paginated listing, with where each can be made now and its hourly price."""

    def prices(self) -> Price | None:
        """Return what a GB of snapshots costs a month as the cloud's own price list says, net
        of VAT, in the account's currency (Hetzner `GET /v1/pricing`); None where the cloud
        has no such endpoint (DigitalOcean). Raise ProviderError when it cannot be read."""

    def create_server(self, request: ServerRequest) -> MadeServer:
        """Make a server from a snapshot and return it as the create's reply describes it
        (starting), without waiting for it to run. Never makes two: after a reply that may
        have been lost, a server of exactly this name (and labels) is looked for first
        (retry.RetryPolicy.create_once). A refusal is raised with the cloud's words."""

    def drill_servers(self) -> list[MadeServer]:
        """Return every server carrying the drill mark (ownership.DRILL_LABEL / DRILL_TAG),
        whoever's, from one paginated listing: the one batched boot poll of an account. Raise
        ProviderError when the listing kept changing while read: an absence from it proves
        nothing then."""

    def get_server(self, server_id: str) -> MadeServer | None:
        """Return one server as the cloud describes it now; None when it does not exist."""

    def delete_drill_server(self, server: MadeServer, owner: str) -> None:
        """Delete a drill server by its id: the last line of defence of docs/promises.md §5.
        The server is read again first, and the DELETE is sent only when it still carries
        the drill mark and `owner`'s mark and no other (ownership.is_drill_server) and still
        has `server.name`; else retry.Refused (code "not_a_drill_server") is raised and
        nothing is sent. One that is already gone counts as deleted."""


def endpoint_for(account: Account) -> str:
    """Return the API URL for `account`: its own setting, else the environment, else the default."""
    configured = account.endpoint or os.environ.get(ENDPOINT_VARIABLES[account.provider])
    return (configured or DEFAULT_ENDPOINTS[account.provider]).rstrip("/")


def connect(
    account: Account, timing: Timing = DEFAULT_TIMING, retry: RetryPolicy = DEFAULT_RETRY
) -> Provider:
    """Return the adapter for `account`. Raise transport.InsecureURLError (a ValueError) for
    an endpoint that is not https, unless it is plain http to this machine."""
    endpoint = endpoint_for(account)
    transport.check_url(endpoint, transport.API_TOKEN)
    return ADAPTERS[account.provider](account.token, endpoint, timing, retry)
