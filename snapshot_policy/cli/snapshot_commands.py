"""`pin`, `unpin` and `undelete`: one managed snapshot's marks, by hand (docs/promises.md
§5.16). Each parses its options, takes the run lock as apply does (both write labels), and
hands one `RunContext` to its flow in `engine/snapshot_marks`.

Exit codes: 0 done; 1 refused (not found, not managed, a day in the past, nothing to take
off) or failed; 3 another run holds the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import click

from snapshot_policy import config
from snapshot_policy.cli.app import EXIT_ERROR, EXIT_LOCKED, EXIT_OK, cli, current_time, selection
from snapshot_policy.cli.cloud_commands import run_files_usable, start_logging
from snapshot_policy.core.model import ProviderError
from snapshot_policy.core.redaction import escape_controls, redact
from snapshot_policy.state.runlock import LockHeld, run_lock
from snapshot_policy.state.statefiles import StateFileError


def _day(ctx: click.Context, param: click.Parameter, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a day; write it as YYYY-MM-DD") from None


def _marking(loaded: config.LoadedConfig, verbose: bool, what: str, flow: Callable) -> int:
    """Find the snapshot and run `flow(found, now, audit)` under the run lock; print what it
    did, or why not."""
    from snapshot_policy.engine import run, snapshot_marks
    from snapshot_policy.state.audit import AuditLog

    if loaded.critical:
        click.echo(f"Nothing {what}: fix the errors above.", err=True)
        return EXIT_ERROR
    context = run.RunContext.of(loaded)
    files = context.files()
    written = {"lock_file", "log_file", *(k for k in files if "audit" in k)}
    if not run_files_usable(files, loaded, written):
        return EXIT_ERROR
    if not start_logging(loaded, verbose):
        return EXIT_ERROR
    now = current_time()
    try:
        with run_lock(loaded.settings.lock_file):
            audit = AuditLog(context.audit_file, "")
            found = snapshot_marks.find(context, now, _snapshot_id(click.get_current_context()))
            done = flow(found, now, audit)
    except LockHeld as error:
        click.echo(str(error), err=True)
        return EXIT_LOCKED
    except snapshot_marks.Refused as error:
        click.echo(escape_controls(f"Nothing {what}: {error}"), err=True)
        return EXIT_ERROR
    except ProviderError as error:
        click.echo(
            escape_controls(f"Nothing {what}: {redact(str(error), loaded.secrets)}"), err=True
        )
        return EXIT_ERROR
    except (OSError, StateFileError) as error:
        click.echo(redact(str(error), loaded.secrets), err=True)
        return EXIT_ERROR
    for line in done.lines:
        click.echo(escape_controls(line))
    return EXIT_OK if done.ok else EXIT_ERROR


def _snapshot_id(ctx: click.Context) -> str:
    return str(ctx.params["snapshot_id"]).strip()


@cli.command("pin", short_help="Keep one snapshot until a day, whatever retention says.")
@selection
@click.argument("snapshot_id", metavar="ID")
@click.option(
    "--until",
    "until",
    required=True,
    callback=_day,
    metavar="DATE",
    help="The last day it is kept (YYYY-MM-DD, in its target's timezone).",
)
@click.option("--note", default="", metavar="TEXT", help="Why, kept on the snapshot.")
def pin_command(
    loaded: config.LoadedConfig,
    verbose: bool,
    whole: bool,
    snapshot_id: str,
    until: date,
    note: str,
) -> int:
    """Pin a snapshot this configuration manages: retention keeps it until DATE (inclusive);
    on Hetzner its delete protection is set too (and lifted by unpin or once the pin has
    expired, only if pin set it). DigitalOcean has no delete protection for snapshots.

    \b
    Exit codes: 0 pinned; 1 refused or failed; 3 another run holds the lock.
    \b
    Examples:
      snapshot-policy pin --policy p.yaml 123456 --until 2027-01-31 --note audit
    """
    from snapshot_policy.engine import snapshot_marks

    return _marking(
        loaded,
        verbose,
        "pinned",
        lambda found, now, audit: snapshot_marks.pin(found, until, note, now, audit),
    )


@cli.command("unpin", short_help="Take a snapshot's pin off.")
@selection
@click.argument("snapshot_id", metavar="ID")
def unpin_command(loaded: config.LoadedConfig, verbose: bool, whole: bool, snapshot_id: str) -> int:
    """Take the pin off a snapshot this configuration manages; on Hetzner lift its delete
    protection if pin set it. Retention decides for it from the next apply.

    \b
    Exit codes: 0 unpinned; 1 refused or failed; 3 another run holds the lock.
    """
    from snapshot_policy.engine import snapshot_marks

    return _marking(loaded, verbose, "unpinned", snapshot_marks.unpin)


@cli.command("undelete", short_help="Take a snapshot's pending deletion back.")
@selection
@click.argument("snapshot_id", metavar="ID")
def undelete_command(
    loaded: config.LoadedConfig, verbose: bool, whole: bool, snapshot_id: str
) -> int:
    """Take back the pending deletion (settings.soft_delete) of a snapshot this
    configuration manages. If no rule keeps it, the next apply marks it again with a full
    grace: pin it to keep it.

    \b
    Exit codes: 0 undeleted; 1 refused or failed; 3 another run holds the lock.
    """
    from snapshot_policy.engine import snapshot_marks

    return _marking(loaded, verbose, "undeleted", snapshot_marks.undelete)
