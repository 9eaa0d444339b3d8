"""A droplet's attached volumes as targets of their own (`volumes: true`; docs/promises.md §5.18).

Pure: the caller lists the account's volumes once and passes them in with the droplet targets
`resolve` made. Each volume attached to a droplet whose spec says `volumes: true` becomes a
Target with `volume_of` = the droplet's id, `server_id` = the volume's id and `server_name` =
`<droplet name>-<volume name>`: the droplet's name pattern then names its snapshots
`web-1-pgdata-20261207030000`, unique per droplet and volume, and an orphan's name still
gives back what stood before the timestamp. Everything else (retention, schedule, safety,
owner, channels, time zone) is the droplet's target's, so retention, ownership (the
snapshot's `resource_id` is the volume), `max_deletions` (counted per target name, across its
droplets and volumes), the journal and orphans work as for droplets.

Not carried over: `hooks` and `consistency` run around the droplet's own snapshot only (a
hook per volume would freeze one host several times at once); `drill` (a volume snapshot
cannot be restored to a droplet); `copies` (DigitalOcean transfers images, not volume
snapshots).

A droplet that names a volume the volume listing lacks fails its target: the listing is
incomplete, so neither a snapshot nor a deletion is decided for that volume, and no absence
is certain for the account's volume snapshots. So does a volume two droplets claim (moved
while the listings were read): two targets over one volume's snapshots would delete what the
other keeps.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace

from snapshot_policy.core.model import Server, Target, TargetFailure, TargetSpec, Volume


def volume_name(droplet_name: str, volume: Volume) -> str:
    """What `{server_name}` stands for in a volume's snapshot names: `<droplet>-<volume>`."""
    return f"{droplet_name}-{volume.name}"


def attached(server: Server, volumes: Mapping[str, Volume]) -> tuple[list[Volume], list[str]]:
    """The volumes attached to `server`, in the order it names them (then those that name it
    but it does not), and the ids it names that `volumes` lacks."""
    found, missing, seen = [], [], set()
    for volume_id in server.volume_ids:
        if volume_id in seen:
            continue
        seen.add(volume_id)
        if volume_id in volumes:
            found.append(volumes[volume_id])
        else:
            missing.append(volume_id)
    for volume in volumes.values():
        if server.id in volume.droplet_ids and volume.id not in seen:
            seen.add(volume.id)
            found.append(volume)
    return found, missing


def volume_targets(
    specs: Sequence[TargetSpec],
    targets: Sequence[Target],
    servers: Sequence[Server],
    volumes: Sequence[Volume],
) -> tuple[list[Target], list[TargetFailure]]:
    """Return a target for each volume attached to a droplet of a target whose spec says
    `volumes: true`, right after that droplet's target, and a failure per droplet that names
    a volume `volumes` lacks. Orphan targets and the targets of other specs pass unchanged."""
    wanted = {spec.name for spec in specs if spec.volumes}
    by_id = {server.id: server for server in servers}
    listed = {volume.id: volume for volume in volumes}
    result: list[Target] = []
    failures: list[TargetFailure] = []
    found_by: dict[str, list[Volume]] = {}
    for target in targets:
        server = by_id.get(target.server_id)
        if target.name not in wanted or target.orphan or target.volume_of or server is None:
            continue
        found, missing = attached(server, listed)
        found_by[target.server_id] = found
        if missing:
            failures.append(_missing(target, missing))
    claims = Counter(volume.id for found in found_by.values() for volume in found)
    for target in targets:
        result.append(target)
        found = found_by.get(target.server_id, []) if not target.volume_of else []
        result += [volume_target(target, v) for v in found if claims[v.id] == 1]
        twice = [v.id for v in found if claims[v.id] > 1]
        if twice:
            failures.append(_claimed_twice(target, twice))
    return result, failures


def volume_target(droplet: Target, volume: Volume) -> Target:
    """The target of `volume`, attached to the droplet of the target `droplet`."""
    return replace(
        droplet,
        server_id=volume.id,
        server_name=volume_name(droplet.server_name, volume),
        region=volume.region,
        hooks=None,
        drill=None,
        copies=(),
        consistency=None,
        volume_of=droplet.server_id,
    )


def as_servers(volumes: Sequence[Volume]) -> list[Server]:
    """The volumes as the servers `orphans.find_orphans` checks existence against: a volume
    snapshot whose volume is listed is no orphan, attached or not."""
    return [Server(volume.id, volume.name, region=volume.region) for volume in volumes]


def _missing(target: Target, missing: Sequence[str]) -> TargetFailure:
    ids = ", ".join(missing)
    return _failure(
        target,
        f"droplet {target.server_name} ({target.server_id}) names volume(s) {ids} that the "
        "account's volume listing lacks: the listing is incomplete, so no snapshot is made "
        "or deleted for them this run",
    )


def _claimed_twice(target: Target, volume_ids: Sequence[str]) -> TargetFailure:
    """A volume two droplets claim (one moved while the listings were read, or a garbled
    reply): two targets over its snapshots would delete what the other keeps, as two
    targets claiming one server would (resolve)."""
    ids = ", ".join(volume_ids)
    return _failure(
        target,
        f"volume(s) {ids} of droplet {target.server_name} ({target.server_id}) are attached "
        "to two droplets as the listings read them: no snapshot is made or deleted for them "
        "this run",
    )


def _failure(target: Target, reason: str) -> TargetFailure:
    return TargetFailure(
        target.name,
        reason,
        target.account,
        target.notify,
        target.server_name,
        target.provider,
        target.hooks,
    )
