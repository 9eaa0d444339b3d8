"""Command line: argv in, one short flow per command, an exit code out (SPEC §3).

Usage errors exit 1, not click's usual 2: for `plan --detailed-exitcode` and for cron
wrappers, 2 already means "changes pending" or "some targets failed".
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click

from snapshot_policy import render
from snapshot_policy.duration import Duration
from snapshot_policy.model import RetentionPolicy
from snapshot_policy.sandbox import serve
from snapshot_policy.simulate import simulate

EXIT_OK = 0
EXIT_ERROR = 1


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="snapshot-policy")
def cli() -> None:
    """Declarative snapshots for DigitalOcean Droplets and Hetzner Cloud servers."""


def _zone(ctx: click.Context, param: click.Parameter, value: str) -> ZoneInfo:
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"{value!r} is not an IANA time zone name such as UTC or Europe/Berlin")


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> Duration | None:
    if value is None:
        return None
    try:
        return Duration.parse(value)
    except ValueError as error:
        raise click.BadParameter(str(error))


def _start(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc).replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO-8601 time such as 2026-01-31T03:00:00Z")
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


_COUNT = click.IntRange(min=0)


@cli.command("simulate")
@click.option("--keep-last", type=_COUNT, default=0, help="Keep the N newest snapshots.")
@click.option("--keep-hourly", type=_COUNT, default=0, help="Keep the newest snapshot of each of the last N hours that have one.")
@click.option("--keep-daily", type=_COUNT, default=0, help="Keep the newest snapshot of each of the last N days that have one.")
@click.option("--keep-weekly", type=_COUNT, default=0, help="Keep the newest snapshot of each of the last N ISO weeks that have one.")
@click.option("--keep-monthly", type=_COUNT, default=0, help="Keep the newest snapshot of each of the last N months that have one.")
@click.option("--keep-yearly", type=_COUNT, default=0, help="Keep the newest snapshot of each of the last N years that have one.")
@click.option("--keep-within", callback=_duration, metavar="DURATION", help="Keep every snapshot within DURATION of the newest (36h, 7d, 2w, 3m, 1y).")
@click.option("--timezone", "zone", default="UTC", callback=_zone, show_default=True, help="IANA time zone in which days, weeks, months and years are counted.")
@click.option("--start", callback=_start, metavar="ISO-8601", help="Time of the first simulated run (default: now). Without an offset it is UTC.")
@click.option("--days", type=click.IntRange(min=1, max=36600), default=30, show_default=True, help="Number of days to simulate.")
@click.option("--runs-per-day", type=click.IntRange(min=1, max=1440), default=1, show_default=True, help="Runs a day, evenly spaced from the start; each makes one snapshot.")
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
def simulate_command(zone: ZoneInfo, start: datetime, days: int, runs_per_day: int, output: str, **rules: object) -> None:
    """Show which snapshots a retention policy keeps over simulated time. No API call.

    \b
    Example: a week of dailies and a month of weeklies, over 60 days:
      snapshot-policy simulate --keep-daily 7 --keep-weekly 4 --days 60
    """
    policy = RetentionPolicy(**rules)
    if not policy.has_rules:
        raise click.UsageError("give at least one retention rule, e.g. --keep-daily 7")
    result = simulate(policy, zone, start, days, runs_per_day)
    click.echo(render.simulation_json(result) if output == "json" else render.simulation_text(result), nl=False)


@cli.command("sandbox")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port on 127.0.0.1 (0 picks a free one).")
@click.option("--state", "state_file", type=click.Path(dir_okay=False), help="JSON state to start from (format: `snapshot_policy.sandbox` docs). Default: a small example fleet.")
def sandbox_command(port: int, state_file: str | None) -> None:
    """Serve the local fake cloud (DigitalOcean, Hetzner, Telegram, webhooks) until Ctrl-C.

    \b
    Example, then point the tool at it with the variables it prints:
      snapshot-policy sandbox --port 8765
    """
    try:
        serve(port, state_file)
    except OSError as error:
        raise click.ClickException(f"cannot serve on 127.0.0.1:{port} or read {state_file}: {error.strerror or error}")
    except (ValueError, KeyError, TypeError) as error:
        raise click.ClickException(f"{state_file} is not a sandbox state file: {error}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line with `argv` and return the exit code; importable for tests."""
    try:
        outcome = cli.main(args=argv, prog_name="snapshot-policy", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        return EXIT_ERROR
    except click.ClickException as error:
        error.show()
        return EXIT_ERROR
    if isinstance(outcome, int):
        return outcome
    return EXIT_OK


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
