"""Command line: argv in, one short flow per command, an exit code out (docs/promises.md §3).

This module holds the command group, the options the commands share and `main`; the
commands are in `cloud_commands` (plan, apply, validate) and `local_commands` (simulate,
migrate, sandbox, demo, completion).

Usage errors exit 1, not click's usual 2: for `plan --detailed-exitcode` and for cron
wrappers, 2 already means "changes pending" or "some targets failed".

The modules that load the cloud SDKs (run, observe, the sandbox, the demo) are imported by
the commands that use them, so `--version`, `--help`, `validate`, `simulate` and
`completion` start without loading pydo, hcloud or python-telegram-bot (issue 14).

Everything a command prints passes the secret masking of `logs` (docs/promises.md §5, invariant 8):
`main` wraps stdout and stderr for the whole command, and once the configuration is loaded
its secrets are masked there, in the log and in every file the command writes.
"""

from __future__ import annotations

import functools
import sys
import traceback
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import click

from snapshot_policy import config
from snapshot_policy.config.secrets import unprotected
from snapshot_policy.core.model import Clock
from snapshot_policy.core.redaction import hide, redacted_output
from snapshot_policy.output.logs import say
from snapshot_policy.output.render import fit

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_LOCKED = 3
# Stopped by a signal: 128 + its number, as a shell reports a command a signal ended.
EXIT_SIGNALLED = {"SIGINT": 130, "SIGTERM": 143}


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="snapshot-policy")
def cli() -> None:
    """Declarative snapshots for DigitalOcean Droplets and Hetzner Cloud servers."""


def system_clock() -> datetime:
    """The wall clock, read here and nowhere else: `main` hands it (or a test's) down."""
    return datetime.now(timezone.utc)


def current_clock() -> Clock:
    """The clock `main` was given, for the command being run."""
    return click.get_current_context().find_root().obj


def current_time() -> datetime:
    return current_clock()()


def selection(command: Callable | None = None, *, timed: bool = False) -> Callable:
    """The options every command that reads the configuration shares (docs/promises.md §3):
    `@selection`, or `@selection(timed=True)` for apply, whose warnings under cron start with
    the local time as every line it prints (README "Logs and the cron output")."""
    if command is None:
        return functools.partial(selection, timed=timed)

    @click.option(
        "--policy", type=click.Path(path_type=Path, dir_okay=False), help="A YAML policy file."
    )
    @click.option(
        "--config",
        "legacy_config",
        type=click.Path(path_type=Path, dir_okay=False),
        help=(
            "A snapshots.config (legacy layout). Without it, server files given as FILES "
            "take the snapshots.config of their folder."
        ),
    )
    @click.argument("server_files", nargs=-1, metavar="[FILES]...")
    @click.option(
        "--target", "targets", multiple=True, metavar="NAME", help="Only this target (repeatable)."
    )
    @click.option(
        "-v", "--verbose", is_flag=True, help="Also show warnings and log to the console."
    )
    @functools.wraps(command)
    def wrapper(policy, legacy_config, server_files, targets, verbose, **options):
        try:
            loaded = config.load(policy, legacy_config, server_files)
        except config.NoConfiguration as error:
            raise click.UsageError(str(error)) from error
        hide(loaded.secrets)
        for problem in loaded.problems:
            if problem.warning and (verbose or problem.loud):  # within 80 columns, as cron mails
                _warn(fit(str(problem)), timed)
            elif not problem.warning:
                _warn(str(problem), timed)
        for warning in unprotected(loaded.files, loaded.secrets):  # always, as ssh does
            _warn(warning, timed)
        unknown = sorted(
            set(targets) - {t.name for t in loaded.targets} - {f.target for f in loaded.failed}
        )
        if unknown:
            raise click.UsageError(_unknown_targets(loaded, unknown))
        if targets:
            loaded = _only(loaded, set(targets))
        return command(loaded=loaded, verbose=verbose, whole=not targets, **options)

    return wrapper


def _warn(text: str, timed: bool) -> None:
    """Print a line about the configuration on stderr, with the run's local time before it
    when `timed` and stderr is not a terminal: what apply prints under cron says when (README
    "Logs"). A stderr nobody reads any more is left alone (logs.write_console): apply goes on.
    """
    say(sys.stderr, text + "\n", current_time() if timed else None)


def _unknown_targets(loaded: config.LoadedConfig, unknown: list[str]) -> str:
    """Say which --target names match nothing, list the targets, and where a name is a server's
    name in a snapshots.py layout, the targets (files) that have it."""
    known = ", ".join(sorted({t.name for t in loaded.targets})) or "none"
    message = f"no target named {', '.join(unknown)}; targets: {known}"
    for name in unknown:
        files = sorted(t.name for t in loaded.targets if loaded.legacy and t.server_name == name)
        if files:
            message += (
                f". {name} is the server name in {', '.join(files)}: "
                "a snapshots.py target is named after its file"
            )
    return message


def _only(loaded: config.LoadedConfig, names: set[str]) -> config.LoadedConfig:
    return replace(
        loaded,
        targets=tuple(t for t in loaded.targets if t.name in names),
        failed=tuple(f for f in loaded.failed if f.target in names),
    )


def main(argv: list[str] | None = None, clock: Clock = system_clock) -> int:
    """Run the command line with `argv` and return the exit code; importable for tests.

    `clock` is the only source of the current time for everything the command does. stdout
    and stderr are masked for the whole command (`redaction.redacted_output`). An unexpected error
    (a bug) prints its traceback, masked, to stderr and is raised again, so tests see it.
    """
    with redacted_output():
        try:
            outcome = cli.main(
                args=argv, prog_name="snapshot-policy", standalone_mode=False, obj=clock
            )
        except click.exceptions.Abort:  # Ctrl-C before apply could change anything
            click.echo("Aborted.", err=True)
            return EXIT_SIGNALLED["SIGINT"]
        except click.ClickException as error:
            error.show()
            return EXIT_ERROR
        except Exception:
            click.echo(
                "snapshot-policy stopped on an unexpected error (a bug; please report it):",
                err=True,
            )
            traceback.print_exc(file=sys.stderr)
            raise
    if isinstance(outcome, int):
        return outcome
    return EXIT_OK


def console() -> None:
    """Console-script entry point. An unexpected error was shown, masked, by `main`: exit 1
    rather than let Python print it again, unmasked."""
    try:
        code = main()
    except Exception:
        code = EXIT_ERROR
    sys.exit(code)
