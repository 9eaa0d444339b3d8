"""`status`: is every server's snapshot fresh, covered, drilled, within its limits? Read-only,
so it runs beside apply (no lock) and from monitoring; its exit code says whether to look
(docs/promises.md §10)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import click

from snapshot_policy import config
from snapshot_policy.cli.app import EXIT_ERROR, cli, current_time, selection
from snapshot_policy.cli.cloud_commands import print_text, run_files_usable, start_logging
from snapshot_policy.core.duration import Duration
from snapshot_policy.state.statefiles import StateFileError


def _late_after(ctx: click.Context, param: click.Parameter, value: str | None) -> timedelta | None:
    if value is None:
        return None
    try:
        return Duration.parse(value).as_timedelta()
    except ValueError as error:
        raise click.BadParameter(f"{error}; give hours or days, e.g. 2h or 26h") from error


@cli.command(
    "status", short_help="Say how fresh, covered and drilled every server's snapshots are."
)
@selection
@click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Print the status for people (text) or as a JSON document (json).",
)
@click.option(
    "--late-after",
    callback=_late_after,
    metavar="DURATION",
    help=(
        "How long a snapshot may be overdue before it is late (default: "
        "snapshot_creation_timeout, at least 1h); for a target snapshotted every run, how old "
        "its newest snapshot may be (default 25h)."
    ),
)
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the status gauges to a Prometheus textfile, keeping its other metrics.",
)
def status_command(
    loaded: config.LoadedConfig,
    verbose: bool,
    whole: bool,
    output: str,
    late_after: timedelta | None,
    metrics_file: Path | None,
) -> int:
    """Show per target and server the newest snapshot and its age against the schedule (ok,
    late, none), the snapshots and their cost, the last run and the last restore drill; per
    account the servers no target covers and the snapshots against snapshot_limit. Changes
    nothing in the clouds and takes no lock.

    \b
    Exit codes: 0 all is well; 2 something is late, missing, uncovered,
    failing or over a limit; 1 the configuration or an account cannot be read.
    \b
    Examples:
      snapshot-policy status --policy snapshot-policy.yaml
      snapshot-policy status --config snapshots.config --output json
    """
    if loaded.critical:
        click.echo("No status: fix the errors above.", err=True)
        return EXIT_ERROR
    from snapshot_policy.engine import run
    from snapshot_policy.output import status as shown

    context = run.RunContext.of(loaded)
    # Read-only: the journal and run state are only read; no log file is written, so a
    # monitoring check every minute leaves no trace. Only --metrics-file is written.
    files = context.files(**{"--metrics-file": metrics_file})
    if not run_files_usable(files, loaded, written={"--metrics-file"}):
        return EXIT_ERROR
    if not start_logging(loaded, verbose, to_file=False):
        return EXIT_ERROR
    try:
        judged = run.status(context, whole, current_time(), late_after)
    except StateFileError as error:
        click.echo(str(error), err=True)
        return EXIT_ERROR
    if output == "json":
        print_text(shown.status_json(judged), styled=False)
    else:
        print_text(shown.status_text(judged), styled=False)
    if metrics_file is not None:
        from snapshot_policy.edges import monitor

        try:
            monitor.write_status_metrics(metrics_file, judged)
        except OSError as error:
            click.echo(f"could not write the metrics file: {error}", err=True)
            return EXIT_ERROR
    return judged.exit_code
