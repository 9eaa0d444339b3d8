"""`consistency: shutdown`: the pure decisions about a target's server power (docs/promises.md
§5.17). The lifecycle (`lifecycle.py`) asks these; the executor sends the power actions and
reads the power state from one server listing per account per round.

- A server is shut down gracefully before its snapshot and powered on after it, always: when
  the snapshot is made, when it failed, when the shutdown wait ran out, when the run stopped.
- A server that was off when listed is left off: no shutdown, no power on, no journal entry.
- Power off (cutting power) happens only with `force: true`, once the graceful shutdown has
  not finished within `timeout`; without it the target fails without a snapshot.
- Downtime runs from the shutdown request until the server is seen running again.
"""

from __future__ import annotations

from snapshot_policy.core.model import Consistency, Target

SHUTDOWN = "shutdown"
RUNNING = frozenset({"active", "running"})
"""The clouds' words for a server that runs (DigitalOcean `active`, Hetzner `running`)."""
OFF = frozenset({"off", "archive"})
"""The clouds' words for a server that is off (DigitalOcean `off`/`archive`, Hetzner `off`)."""
POWER_ON_AGAIN = 10.0
"""A server still off this long after its power on was accepted is sent it again: the power
on failed (its action ended in error) or never arrived. Long enough for a cloud's power on to
show in its listing, so a second one is rarely refused as a pending event."""
POWER_ON_SETTLE = 30.0
"""A server asked to shut down and never seen off (the wait ran out, or the run was stopped)
may still be shutting down — DigitalOcean lists it `active` meanwhile — and go off after the
power on: it counts as running only once seen running this long after the power on (at most
the rule's `timeout`); seen off meanwhile, it is powered on again."""
POWER_ON_TRIES_APART = 1.0
"""A power on refused (the server still locked by its snapshot) is sent again after this,
doubling up to the poll interval."""


def is_off(status: str | None) -> bool:
    return status in OFF


def is_running(status: str | None) -> bool:
    return status in RUNNING


def shuts_down(target: Target) -> Consistency | None:
    """The target's `consistency: shutdown`, if it has one; None: its snapshot is taken live."""
    consistency = target.consistency
    return consistency if consistency is not None and consistency.mode == SHUTDOWN else None


def left_off(target: Target) -> bool:
    """Its server was off when listed: it is snapshotted as it is and left off."""
    return shuts_down(target) is not None and is_off(target.server_status)


def unknown_power(target: Target) -> str | None:
    """Why the target's server is not shut down: its listing called it neither running nor
    off (a reply without a status, a server starting or being migrated). Shutting it down
    would end in powering on a server that may have been meant off: no shutdown, no snapshot,
    and the next run looks again. None: its power state is known."""
    status = target.server_status
    if shuts_down(target) is None or is_running(status) or is_off(status):
        return None
    return (
        f"consistency: shutdown — the server's power state is {status or 'missing'} in its "
        "listing, neither running nor off: it is not shut down and no snapshot is made; the "
        "next run looks again"
    )


def wait_ran_out(consistency: Consistency, since: float, at: float) -> bool:
    """The graceful shutdown (or the power off after it) has not finished within `timeout`."""
    return at - since > consistency.timeout


def power_on_given_up(
    consistency: Consistency, creation_timeout: float, since: float, at: float
) -> bool:
    """A power on is asked again until this long after the first try: a server still locked
    by its snapshot (a run stopped while it was made) accepts it once the snapshot is over."""
    return at - since > max(consistency.timeout, creation_timeout)


def power_on_again(sent: float, at: float) -> bool:
    """Send the power on again: the server was still seen off `POWER_ON_AGAIN` after it."""
    return at - sent >= POWER_ON_AGAIN


def running_for_sure(consistency: Consistency, seen_off: bool, sent: float, at: float) -> bool:
    """Seen running after a power on sent at `sent`: for sure once the server was seen off
    before (its shutdown is over), else only `POWER_ON_SETTLE` (at most `timeout`) after."""
    return seen_off or at - sent >= min(POWER_ON_SETTLE, consistency.timeout)


def power_on_wait(tries: int, poll_interval: float) -> float:
    return min(poll_interval, POWER_ON_TRIES_APART * 2**tries)


def plan_note(target: Target, due: bool = True) -> str | None:
    """What the plan says of the target's consistency, or None when it has none."""
    if shuts_down(target) is None:
        return None
    if left_off(target):
        return "consistency: shutdown — the server is already off; it is left off"
    if unknown_power(target) is not None:
        return unknown_power(target)
    if not due:
        return "consistency: shutdown — no snapshot due: the server is not shut down"
    force = " (then powered off: force)" if target.consistency.force else ""
    return (
        f"consistency: shutdown — the server will be off for about the snapshot's duration{force}"
    )
