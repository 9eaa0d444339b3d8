"""Which snapshots the tool may manage: only those it can prove it made (SPEC §5).

Hetzner: the `managed-by=snapshot-policy` label and the server-id label, on an image whose
`created_from.id` is the server. DigitalOcean: the `snapshot-policy` tag on a snapshot whose
`resource_id` is the droplet, whatever its name — a droplet can be renamed, its snapshots
then keep the old name in theirs, and they are still its snapshots. With
`adopt_legacy_names` (always on in legacy mode), unmarked snapshots of the same server whose
names fit the pattern exactly are adopted too: that is how `snapshots.py` named them,
`{name}-{YYYYmmddHHMMSS}`. Since there the name is the only proof, it must be the server's
name now: an unmarked snapshot named after a renamed server's old name stays unmanaged.
A name that merely contains the server's name proves nothing.

Pure, and free of any SDK: the plan can be made and tested without loading pydo or hcloud.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection, Iterable

from snapshot_policy.model import DIGITALOCEAN, CloudSnapshot, Snapshot, Target

MANAGED_BY_LABEL = "managed-by"
MANAGED_BY_VALUE = "snapshot-policy"
SERVER_ID_LABEL = "snapshot-policy/server-id"
TARGET_LABEL = "snapshot-policy/target"
DIGITALOCEAN_TAG = "snapshot-policy"


def marker_labels(target: Target) -> dict[str, str]:
    """Return the marker that shows a snapshot was made by this tool for `target`: the
    DigitalOcean tag (a label with an empty value), or the Hetzner labels naming its server."""
    if target.provider == DIGITALOCEAN:
        return {DIGITALOCEAN_TAG: ""}
    return {
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        SERVER_ID_LABEL: target.server_id,
        TARGET_LABEL: _label_value(target.name),
    }


def _label_value(text: str) -> str:
    """Return `text` shaped as a Hetzner label value: 63 characters of [A-Za-z0-9._-], alphanumeric ends."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", text)[:63]
    return re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", cleaned)


def name_pattern_regex(target: Target) -> re.Pattern[str]:
    """Return a regex matching exactly the names the target's pattern produces."""
    values = {"server_name": target.server_name, "server_id": target.server_id, "target": target.name}
    parts = []
    for literal, field_name, _, _ in string.Formatter().parse(target.name_pattern):
        parts.append(re.escape(literal))
        if field_name == "timestamp":
            parts.append(r"\d{14}")
        elif field_name is not None:
            parts.append(re.escape(values[field_name]))
    return re.compile("".join(parts))


def has_marker(provider: str, cloud: CloudSnapshot) -> bool:
    """True when the snapshot carries the mark this tool puts on what it makes."""
    if provider == DIGITALOCEAN:
        return DIGITALOCEAN_TAG in cloud.labels
    return cloud.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE


def by_server(listing: Iterable[CloudSnapshot]) -> dict[str | None, list[CloudSnapshot]]:
    """Return an account listing grouped by the server each snapshot was made from, in
    listing order within each server (None: the API did not say).

    `snapshots_for(target, by_server(listing).get(target.server_id, []))` equals
    `snapshots_for(target, listing)`, but costs the server's snapshots, not the account's:
    grouping once per account keeps reading a fleet linear in its size (SPEC §8).
    """
    grouped: dict[str | None, list[CloudSnapshot]] = {}
    for snapshot in listing:
        grouped.setdefault(snapshot.server_id, []).append(snapshot)
    return grouped


def snapshots_for(target: Target, listing: Iterable[CloudSnapshot], pending: Collection[str] = frozenset()) -> list[Snapshot]:
    """Return the snapshots of the target's server from an account listing (or the part of
    it `by_server` gives for that server), each classified.

    `pending` are names this tool started for the server and has not marked yet (journal.py).
    """
    return [classify(target, s, pending) for s in listing if s.server_id == target.server_id]


def classify(target: Target, cloud: CloudSnapshot, pending: Collection[str] = frozenset()) -> Snapshot:
    """Return `cloud` as a Snapshot of `target`'s server, managed or not, and why."""
    proof = _digitalocean_proof(target, cloud) if target.provider == DIGITALOCEAN else _hetzner_proof(target, cloud)
    managed, ownership = proof
    unmarked = not managed and cloud.name in pending
    if unmarked:
        managed, ownership = True, "adopted: started by an interrupted run of this tool; it will be marked"
    if not managed and target.adopt_legacy_names and name_pattern_regex(target).fullmatch(cloud.name):
        managed, ownership = True, f"adopted: named exactly as {target.name_pattern!r} names them (as snapshots.py did)"
    return Snapshot(
        id=cloud.id,
        name=cloud.name,
        created=cloud.created,
        server_id=cloud.server_id or "",
        managed=managed,
        ownership=ownership,
        protected=cloud.protected,
        creating=cloud.creating,
        unmarked=unmarked,
        size_gb=cloud.size_gb,
    )


def _hetzner_proof(target: Target, cloud: CloudSnapshot) -> tuple[bool, str]:
    if cloud.labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return False, f"no {MANAGED_BY_LABEL}={MANAGED_BY_VALUE} label"
    if cloud.labels.get(SERVER_ID_LABEL) != target.server_id:
        return False, f"label {SERVER_ID_LABEL} is not {target.server_id}"
    return True, f"labels {MANAGED_BY_LABEL}={MANAGED_BY_VALUE} and {SERVER_ID_LABEL}={target.server_id}"


def _digitalocean_proof(target: Target, cloud: CloudSnapshot) -> tuple[bool, str]:
    if DIGITALOCEAN_TAG not in cloud.labels:
        return False, f"not tagged {DIGITALOCEAN_TAG}"
    if cloud.server_id != target.server_id:
        return False, f"tagged {DIGITALOCEAN_TAG}, but made from droplet {cloud.server_id}, not {target.server_id}"
    return True, f"tagged {DIGITALOCEAN_TAG}, made from droplet {target.server_id}"
