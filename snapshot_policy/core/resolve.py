"""Which servers each target spec names, given an account's listings (docs/promises.md §5).

Pure: the caller lists the account's servers and, once per distinct label selector, the
servers that selector matches (`label_selectors`), and passes the listings in. A spec names
servers by id, by name (every server of that name, in listing order) or by label selector.
A name or id that is missing fails its target, and the servers it does find are still its
targets. A server claimed by two targets fails both, since two retention policies over one
server's snapshots would delete each other's. A server's own labels or tags may override its
target's rules (`overrides.overridden`); one that cannot be applied fails that server alone.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import replace

from snapshot_policy.core.model import Server, Target, TargetFailure, TargetSpec
from snapshot_policy.core.overrides import OverrideError, overridden


def label_selectors(specs: Sequence[TargetSpec]) -> list[str]:
    """Return the distinct label selectors the specs use, in the order they first name them:
    each is listed once however many targets share it (docs/promises.md §8)."""
    named = (s.selector.label_selector for s in specs if s.selector.label_selector)
    return list(dict.fromkeys(named))


def resolve(
    specs: Sequence[TargetSpec], servers: Sequence[Server], selected: Mapping[str, Sequence[Server]]
) -> tuple[list[Target], list[TargetFailure]]:
    """Given one account's `servers` and, per label selector, the servers it `selected`, return
    a target per spec and server it names, and a failure per spec that names a missing server
    or shares a server with another spec."""
    claimed: dict[str, list[TargetSpec]] = defaultdict(list)
    servers_of: dict[str, list[Server]] = {}
    failures: list[TargetFailure] = []
    index = _ServerIndex(servers)
    for spec in specs:
        if spec.selector.label_selector:
            found = list(selected[spec.selector.label_selector])
            missing = [] if found else [f"no server matches {spec.selector.describe()}"]
        else:
            found, missing = _pick(index, spec)
        if missing:  # the servers that exist are still snapshotted; the target fails for the rest
            failures.append(failure(spec, "; ".join(missing)))
        servers_of[spec.name] = found
        for server in found:
            claimed[server.id].append(spec)
    targets = []
    for spec in specs:
        for server in servers_of.get(spec.name, []):
            owners = claimed[server.id]
            if len(owners) > 1:
                names = " and ".join(sorted({o.name for o in owners}))
                reason = (
                    f"server {server.name} ({server.id}) is selected by targets {names}; "
                    "a server may belong to one target only"
                )
                failures.append(failure(spec, reason))
                continue
            try:
                targets.append(
                    overridden(_target(spec, server), server.labels, spec.server_overrides)
                )
            except OverrideError as error:  # that server fails; the spec's others run
                failures.append(replace(failure(spec, str(error)), server_name=server.name))
    return targets, failures


def failure(spec: TargetSpec, reason: str) -> TargetFailure:
    """Return the failure of a spec whose servers are not known: it carries what the spec
    says of itself (channels, hooks, the configured server name)."""
    return TargetFailure(
        spec.name,
        reason,
        spec.account.name,
        spec.notify,
        spec.server_name or "",
        spec.account.provider,
        spec.hooks,
    )


class _ServerIndex:
    """An account's servers by id (the last listed wins) and by name (all, in listing order),
    built once per account so resolving many specs stays linear in the fleet."""

    def __init__(self, servers: Sequence[Server]):
        self.by_id = {s.id: s for s in servers}
        self.by_name: dict[str, list[Server]] = defaultdict(list)
        for server in servers:
            self.by_name[server.name].append(server)


def _pick(index: _ServerIndex, spec: TargetSpec) -> tuple[list[Server], list[str]]:
    """Return the servers a spec names by id or by name, and a sentence for each one missing."""
    if spec.selector.ids:
        by_id, ids = index.by_id, spec.selector.ids
        found = [by_id[i] for i in ids if i in by_id]
        return found, [f"no server with id {i}" for i in ids if i not in by_id]
    found, missing = [], []
    for name in spec.selector.names:
        named = index.by_name.get(name, [])
        found += named
        if not named:
            close = difflib.get_close_matches(name, list(index.by_name), n=3)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            missing.append(f"no server named {name!r}{hint}")
    return found, missing


def _target(spec: TargetSpec, server: Server) -> Target:
    return Target(
        name=spec.name,
        provider=spec.account.provider,
        account=spec.account.name,
        server_id=server.id,
        server_name=spec.server_name or server.name,
        retention=spec.retention,
        schedule=spec.schedule,
        safety=spec.safety,
        timezone=spec.timezone,
        name_pattern=spec.name_pattern,
        adopt_legacy_names=spec.adopt_legacy_names,
        notify=spec.notify,
        hooks=spec.hooks,
        owner=spec.owner,
        drill=spec.drill,
        region=server.region,
        server_overrides=spec.server_overrides,
        copies=spec.copies,
        consistency=spec.consistency,
        server_status=server.status,
    )
