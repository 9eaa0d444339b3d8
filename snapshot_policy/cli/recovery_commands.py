"""The commands that prove and use the snapshots (issue 22): `drill` restores each target's
newest snapshot to a throwaway server, probes it and deletes it; `restore` makes a new server
from a snapshot and leaves it running. Each parses its options and hands one `RunContext`
to its flow in `engine/run`."""

from __future__ import annotations

import re

import click

from snapshot_policy import config
from snapshot_policy.cli.app import (
    EXIT_CHANGES,
    EXIT_ERROR,
    EXIT_LOCKED,
    EXIT_OK,
    EXIT_SIGNALLED,
    cli,
    current_clock,
    selection,
)
from snapshot_policy.cli.cloud_commands import (
    print_timed,
    run_files_usable,
    start_logging,
    stopped_by_signals,
)
from snapshot_policy.core.redaction import escape_controls, redact
from snapshot_policy.output import render
from snapshot_policy.output.progress import ApplyProgress
from snapshot_policy.state.runlock import LockHeld, run_lock
from snapshot_policy.state.statefiles import StateFileError


@cli.command("drill", short_help="Restore each target's newest snapshot to a throwaway server.")
@selection(timed=True)
@click.option("--dry-run", is_flag=True, help="Print which drills would run; change nothing.")
def drill_command(loaded: config.LoadedConfig, verbose: bool, whole: bool, dry_run: bool) -> int:
    """Run the restore drill of every target with `drill:` configured (or those named by
    --target) now, due or not: restore its newest managed snapshot to a throwaway server,
    wait until it runs, run the probe, and delete the server — always. The result is marked
    on the snapshot, kept in the run state, audited and notified.

    \b
    Exit codes: 0 every drill passed and its server is gone,
    1 a configuration error or nothing to drill,
    2 a drill failed or a server is left for the next run,
    3 another run holds the lock, 130 / 143 stopped by SIGINT / SIGTERM.
    \b
    Examples:
      snapshot-policy drill --policy snapshot-policy.yaml --dry-run
      snapshot-policy drill --policy snapshot-policy.yaml --target web
    """
    from snapshot_policy.engine import run
    from snapshot_policy.engine.execute import Stop

    clock = current_clock()
    if loaded.critical:
        print_timed(clock, "Nothing drilled: fix the errors above.", err=True)
        return EXIT_ERROR
    without = sorted(t.name for t in loaded.targets if t.drill is None)
    if not whole and without:
        raise click.UsageError(
            f"target {', '.join(without)} has no drill: add `drill: {{every: 7d}}` to it "
            'in the policy (README "Restore drills")'
        )
    if not any(t.drill is not None for t in loaded.targets):
        print_timed(
            clock,
            "No target has a drill configured: add `drill: {every: 7d}` to a target "
            '(README "Restore drills").',
            err=True,
        )
        return EXIT_ERROR
    context = run.RunContext.of(loaded)
    files = context.files()
    written = {"log_file"} if dry_run else set(files)
    if not run_files_usable(files, loaded, written, clock):
        return EXIT_ERROR
    if not start_logging(loaded, verbose, clock=clock):
        return EXIT_ERROR
    stop = Stop()
    progress = ApplyProgress(now=clock)
    try:
        if dry_run:
            plan, failures, _ = run.drill(context, clock, dry_run=True)
            report = None
        else:
            with stopped_by_signals(stop), run_lock(loaded.settings.lock_file), progress:
                plan, failures, report = run.drill(context, clock, progress, stop)
    except LockHeld as error:
        print_timed(clock, str(error), err=True)
        return EXIT_LOCKED
    except OSError as error:
        print_timed(clock, redact(str(error), loaded.secrets), err=True)
        return EXIT_ERROR
    for failure in failures:
        print_timed(clock, escape_controls(f"{failure.target}: {failure.reason}"), err=True)
    if report is None:
        print_timed(clock, "Dry run: drill would do the following; nothing was changed.")
        print_timed(clock, render.drills_text(plan.drills))
        return EXIT_ERROR if failures else EXIT_OK
    for line in map(render.drill_result_line, report.drills):
        print_timed(clock, render.fit(escape_controls(line)))
    refusals = [p for p in plan.drills if p.refusal is not None]
    if refusals:
        print_timed(clock, render.drills_text(refusals), err=True)
    passed = sum(d.passed and d.deleted for d in report.drills)
    refused = sum(p.refusal is not None for p in plan.drills)
    print_timed(
        clock,
        f"{len(report.drills)} drill(s): {passed} passed, {len(report.drills) - passed} failed"
        + (f", {refused} could not run" if refused else "")
        + ".",
        err=True,
    )
    if stop.is_set():
        print_timed(
            clock, f"Stopped by {stop.reason}: no drill began after it; its servers were deleted."
        )
        return EXIT_SIGNALLED[stop.reason]
    if report.unwritten:
        for line in report.unwritten:
            print_timed(clock, line, err=True)
    bad = failures or refused or report.unwritten or passed < len(report.drills)
    return EXIT_CHANGES if bad else EXIT_OK


HOSTNAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


@cli.command("restore", short_help="Make a new server from a snapshot; touch nothing else.")
@selection
@click.option("--snapshot", "snapshot_id", metavar="ID", help="The snapshot (default: newest).")
@click.option("--name", required=True, metavar="NEW", help="The new server's name.")
@click.option("--machine-type", metavar="X", help="Size (DigitalOcean) or server type (Hetzner).")
@click.option("--region", metavar="R", help="Region (DigitalOcean) or location (Hetzner).")
def restore_command(
    loaded: config.LoadedConfig,
    verbose: bool,
    whole: bool,
    snapshot_id: str | None,
    name: str,
    machine_type: str | None,
    region: str | None,
) -> int:
    """Make a NEW server from a snapshot of --target's server (its newest managed snapshot
    unless --snapshot), wait until it runs, and print how to reach it. Refuses a name a
    server of the account already has. Never deletes, rebuilds or touches an existing
    server; the new one carries no drill mark, so this tool never deletes it either.

    \b
    Exit codes: 0 the server runs, 1 refused or failed (what was made is printed).
    \b
    Examples:
      snapshot-policy restore --policy p.yaml --target web --name web-1-restored
      snapshot-policy restore --policy p.yaml --target db --snapshot 123 \\
        --name db-copy --machine-type cx32 --region nbg1
    """
    from snapshot_policy.engine import restore as restoring
    from snapshot_policy.engine import run
    from snapshot_policy.engine.execute import Stop

    clock = current_clock()
    if whole or len({t.name for t in loaded.targets} | {f.target for f in loaded.failed}) != 1:
        raise click.UsageError("restore needs exactly one --target T")
    if not HOSTNAME.fullmatch(name):
        raise click.BadParameter(
            f"{name!r} is not a hostname both clouds take: 1 to 63 letters, digits and "
            "dashes, starting and ending with a letter or digit",
            param_hint="--name",
        )
    if loaded.critical or not loaded.targets:
        reasons = [f"{f.target}: {f.reason}" for f in loaded.failed]
        for reason in reasons:
            click.echo(escape_controls(reason), err=True)
        click.echo("Nothing restored: fix the errors above.", err=True)
        return EXIT_ERROR
    context = run.RunContext.of(loaded)
    if not run_files_usable(context.files(), loaded, set(context.files()), clock):
        return EXIT_ERROR
    if not start_logging(loaded, verbose, clock=clock):
        return EXIT_ERROR
    stop = Stop()
    try:
        with stopped_by_signals(stop), run_lock(loaded.settings.lock_file):
            made = restoring.new_server(
                context, clock, name, snapshot_id, machine_type, region, stop
            )
    except LockHeld as error:
        click.echo(str(error), err=True)
        return EXIT_LOCKED
    except (OSError, StateFileError) as error:
        click.echo(redact(str(error), loaded.secrets), err=True)
        return EXIT_ERROR
    for line in restored_lines(made):
        click.echo(escape_controls(line), err=made.error is not None and made.server is None)
    if stop.is_set() and not made.running:
        return EXIT_SIGNALLED[stop.reason]  # as every command a signal stops (130 / 143)
    return EXIT_OK if made.running and made.error is None else EXIT_ERROR


def restored_lines(made) -> list[str]:
    """What `restore` tells: the server it made and how to reach it, or why it made none."""
    lines = []
    server = made.server
    if server is not None:
        t = made.target
        lines.append(
            f"Restored {made.snapshot.name} ({made.snapshot.id}) of {t.name} "
            f"({t.server_name}) to a new server:"
        )
        lines.append(f"  id:      {server.id}")
        lines.append(f"  name:    {server.name}")
        lines.append(f"  type:    {made.machine_type} in {made.region}")
        lines.append(f"  status:  {server.status}")
        if server.public_ip:
            lines.append(f"  public:  {server.public_ip}")
        if server.private_ip:
            lines.append(f"  private: {server.private_ip}")
        if made.restore_seconds is not None:
            lines.append(f"  running after {made.restore_seconds:.0f}s")
        address = server.public_ip or server.private_ip
        if address and made.running:
            lines.append(f"Reach it with: ssh root@{address}")
        lines.append(
            "It is yours: snapshot-policy never deletes it. Delete it in the cloud's console "
            "or CLI when done."
        )
    if made.error is not None:
        lines.append(f"restore: {made.error}")
    return lines
