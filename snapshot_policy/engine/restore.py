"""`restore`: a new server from a snapshot (issue 22, item 4; docs/promises.md §10).

The same mechanics as a drill (the snapshot, a machine type that fits, a region) but the
server is the operator's: it carries no drill mark, so this tool never deletes it, and a name
the account already has is refused, so no existing server is touched. Like every run, it
first deletes the drill servers earlier runs left (engine/drill.py).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from snapshot_policy.core import drills
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    Clock,
    Drill,
    MadeServer,
    ProviderError,
    ServerRequest,
    Snapshot,
    Target,
)
from snapshot_policy.edges import providers
from snapshot_policy.engine import run
from snapshot_policy.engine.execute import Stop
from snapshot_policy.engine.observe import Observation, observe
from snapshot_policy.state.audit import AuditLog, DrillServer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Restored:
    """What `restore` made: the server as last seen (None when none was made), from which
    snapshot, to what and where; `running` once it ran; `error` what went wrong (the
    server, if made, is left as it is: restore deletes nothing)."""

    target: Target | None = None
    snapshot: Snapshot | None = None
    server: MadeServer | None = None
    machine_type: str = ""
    region: str = ""
    running: bool = False
    error: str | None = None
    restore_seconds: float | None = None


DEFAULT_BOOT_TIMEOUT = 900.0
"""How long restore waits for its server to run when the target configures no drill."""


def new_server(
    context: run.RunContext,
    clock: Clock,
    name: str,
    snapshot_id: str | None = None,
    machine_type: str | None = None,
    region: str | None = None,
    stop: Stop | None = None,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> Restored:
    """`restore`: make a new server `name` from a snapshot of the context's one target (the
    newest managed one unless `snapshot_id`), of `machine_type` in `region` (default: the
    cheapest that fits, preferring the server's region), and wait until it runs. Refuses when
    a server of that name exists in the account. Never deletes or rebuilds a server (but the
    drill servers earlier runs left, first, as every run does); the new server carries no
    drill mark, so this tool never deletes it."""
    stop = stop or Stop()
    now = clock()
    (spec,) = context.loaded.targets
    journal = context.journal(now)
    observation = observe(
        [spec],
        context.connect,
        orphans=False,
        journal=journal,
        now=now,
        creation_timeout=timedelta(seconds=context.settings.snapshot_creation_timeout),
    )
    if observation.failures:
        return Restored(error="; ".join(f.reason for f in observation.failures))
    chosen = _restore_source(spec.name, observation, snapshot_id, now)
    if isinstance(chosen, str):
        return Restored(error=chosen)
    target, snapshot = chosen
    provider = observation.providers[target.account]
    try:
        machines = provider.machine_types()
        servers = provider.servers()
    except ProviderError as error:
        return Restored(target, snapshot, error=str(error))
    taken = [s for s in servers if s.name == name]
    home = next((s.region for s in servers if s.id == target.server_id), None)
    if taken:
        return Restored(
            target,
            snapshot,
            error=(
                f"a server named {name} exists in account {target.account} (id {taken[0].id}): "
                "give another --name; restore never touches an existing server"
            ),
        )
    drill = target.drill or Drill(Duration.parse("7d"), boot_timeout=DEFAULT_BOOT_TIMEOUT)
    drill = replace(drill, machine_type=machine_type)
    fit = drills.choose_machine(drill, snapshot, machines, region or home)
    if isinstance(fit, str):
        return Restored(target, snapshot, error=f"no machine type will do: {fit}")
    machine, where = fit
    if region is not None and where != region:
        return Restored(
            target,
            snapshot,
            error=(
                f"no machine type that fits {snapshot.name} is offered in {region}; "
                f"leave --region out to take {where}"
            ),
        )
    audit = AuditLog(context.audit_file, "")
    drilling = run.drill_runner(
        context, observation, journal, audit, clock, context.state(now), lambda t, s: None, stop
    )
    drilling.clear_leftovers([target.account])
    request = ServerRequest(name, snapshot.id, machine.name, where, public_network=True)
    made = Restored(target, snapshot, machine_type=machine.name, region=where)
    sent = monotonic()
    try:
        server = provider.create_server(request)
    except ProviderError as error:
        uncertain = (
            ""
            if error.refused
            else (
                f"; the cloud may have made it: look for a server named {name} in account "
                f"{target.account}"
            )
        )
        return replace(made, error=f"{error}{uncertain}")
    record = DrillServer(
        target.name,
        target.provider,
        target.account,
        target.server_id,
        snapshot.id,
        name,
        server.id,
    )
    try:
        audit.record_server("restore server created", record, f"restored {snapshot.name}", clock())
    except OSError as error:
        log.error("could not write the audit log: %s", error)
    log.info("%s: restore: created %s (%s) from %s", target.name, name, server.id, snapshot.name)
    return _wait_running(
        replace(made, server=server),
        provider,
        drill.boot_timeout,
        stop,
        sleep,
        monotonic,
        sent,
        context.timing.poll_interval,
    )


def _restore_source(
    name: str, observation: Observation, snapshot_id: str | None, now: datetime
) -> tuple[Target, Snapshot] | str:
    """The server and snapshot a restore starts from, or why there is none."""
    observed = [(t, s) for t, s in observation.observed if t.name == name and not t.orphan]
    if snapshot_id is not None:
        for target, snapshots in observed:
            for snapshot in snapshots:
                if snapshot.id == snapshot_id and not snapshot.creating:
                    return target, snapshot
        return (
            f"snapshot {snapshot_id} is not a finished snapshot of target {name}'s servers: "
            f"see `snapshot-policy plan --target {name}` for its snapshots and their ids"
        )
    if not observed:
        return f"target {name} names no server that exists"
    if len(observed) > 1:
        servers = ", ".join(t.server_name for t, _ in observed)
        return f"target {name} covers {len(observed)} servers ({servers}): give --snapshot ID"
    target, snapshots = observed[0]
    snapshot = drills.choose_snapshot(snapshots, now)
    if snapshot is None:
        return f"target {name} has no finished managed snapshot to restore: give --snapshot ID"
    return target, snapshot


def _wait_running(
    made: Restored,
    provider: providers.Provider,
    timeout: float,
    stop: Stop,
    sleep: Callable[[float], None],
    monotonic: Callable[[], float],
    sent: float,
    poll_interval: float,
) -> Restored:
    """Ask for the server until it runs, fails, or `timeout` seconds from `sent` passed."""
    server = made.server
    wait = 0.5
    while not stop.is_set():
        try:
            seen = provider.get_server(server.id)
        except ProviderError as error:
            log.warning("restore: could not read server %s: %s", server.id, error)
            seen = server
        if seen is None:
            return replace(made, error=f"server {server.name} ({server.id}) no longer exists")
        server = seen
        if seen.status == "running":
            return replace(made, server=seen, running=True, restore_seconds=monotonic() - sent)
        if seen.status == "failed":
            return replace(made, server=seen, error=f"server {seen.name} ({seen.id}) did not boot")
        if monotonic() - sent > timeout:
            return replace(
                made,
                server=seen,
                error=f"server {seen.name} ({seen.id}) was not running after {timeout:g}s",
            )
        sleep(wait)
        wait = min(wait * 2, poll_interval)
    return replace(
        made,
        server=server,
        error=(
            f"{stop.reason} stopped the wait; server {server.name} ({server.id}) is left as it is"
        ),
    )
