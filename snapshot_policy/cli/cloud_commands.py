"""The commands that read the clouds: plan, apply and validate. Each parses its options,
builds one `RunContext` and hands it to its flow in `engine/run`."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

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
    current_time,
    selection,
)
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import Clock, RunReport
from snapshot_policy.core.redaction import escape_controls, redact
from snapshot_policy.output import planfile, render
from snapshot_policy.output.logs import say, setup_logging
from snapshot_policy.output.planfile import PlanFileError
from snapshot_policy.output.progress import ApplyProgress
from snapshot_policy.state.runlock import LockHeld, run_lock
from snapshot_policy.state.statefiles import StateFileError, check_files

if TYPE_CHECKING:
    from snapshot_policy.engine.run import RunContext


def _plan_age(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    try:
        return Duration.parse(value).as_timedelta()
    except ValueError as error:
        raise click.BadParameter(f"{error}; give hours or days, e.g. 24h or 2d") from error


def start_logging(
    loaded: config.LoadedConfig, verbose: bool, to_file: bool = True, clock: Clock | None = None
) -> bool:
    """Log as every command that talks to a cloud does: the configured file (unless `to_file`
    is false), the console with -v, secrets masked on both; SDK warnings such as retries go
    there too, never to Python's unmasked last-resort handler. Print why and return False if
    the log cannot be set up. With apply's `clock`, console lines and this error are timed
    under cron (`print_timed`)."""
    settings = loaded.settings
    try:
        setup_logging(
            settings.log_file if to_file else None,
            settings.log_max_bytes,
            settings.log_backup_count,
            settings.log_level,
            verbose,
            loaded.secrets,
            legacy=loaded.legacy,
            now=clock,
        )
    except (OSError, ValueError) as error:
        _error(clock, str(error))
        return False
    return True


def _error(clock: Clock | None, text: str) -> None:
    """Print `text` on stderr: as apply prints under cron (`print_timed`) given its `clock`."""
    if clock is None:
        click.echo(text, err=True)
    else:
        print_timed(clock, text, err=True)


def print_text(text: str, styled: bool) -> None:
    """Print `text`; a plan in colour when stdout is a terminal (rich honours NO_COLOR)."""
    if styled and sys.stdout.isatty():
        from rich.console import Console

        Console(file=sys.stdout, highlight=False, soft_wrap=True).print(render.styled(text), end="")
    else:
        click.echo(text, nl=False)


def run_files_usable(
    files: dict[str, Path | str | None],
    loaded: config.LoadedConfig,
    written: set[str],
    clock: Clock | None = None,
) -> bool:
    """Say why, and return False, if the run's files would clash, overwrite a configuration
    file, or cannot be used (statefiles.check_files); `written` are those this command writes.
    With apply's `clock`, the reason is timed under cron (`print_timed`)."""
    try:
        check_files(files, loaded.files, read_only=set(files) - written)
    except StateFileError as error:
        _error(clock, str(error))
        return False
    return True


@cli.command("plan")
@selection
@click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Print the plan for people (text) or as the saved plan's JSON document (json).",
)
@click.option(
    "--out",
    "plan_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also save the plan (JSON) for `apply --plan`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 when nothing is to do, 2 when changes are pending, 1 on error.",
)
def plan_command(
    loaded: config.LoadedConfig,
    verbose: bool,
    whole: bool,
    output: str,
    plan_file: Path | None,
    detailed_exitcode: bool,
) -> int:
    """Show what apply would create, delete and keep, and why. Changes nothing.

    \b
    Examples:
      snapshot-policy plan --policy snapshot-policy.yaml
      snapshot-policy plan --config snapshots.config --output json --out plan.json
    """
    if loaded.critical:
        click.echo("Nothing planned: fix the errors above.", err=True)
        return EXIT_ERROR
    from snapshot_policy.engine import run

    context = run.RunContext.of(loaded)
    # Before the log opens (a log_file naming the policy would be appended to) and before
    # reading every cloud: plan writes its log and --out, and only reads the rest.
    files = context.files(**{"plan --out": plan_file})
    if not run_files_usable(files, loaded, written={"log_file", "plan --out"}):
        return EXIT_ERROR
    if not start_logging(loaded, verbose):
        return EXIT_ERROR
    try:
        plan, failures, cost = run.priced_plan(context, whole, current_time())
    except StateFileError as error:
        click.echo(str(error), err=True)
        return EXIT_ERROR
    if output == "json":
        print_text(planfile.plan_json(plan, failures, cost), styled=False)
    else:
        print_text(render.plan_text(plan, failures, cost), styled=True)
    if plan_file is not None:
        try:
            planfile.save(plan_file, plan, failures, cost)
        except StateFileError as error:
            click.echo(f"cannot save the plan to {plan_file}: {error.reason}", err=True)
            return EXIT_ERROR
    if failures:
        return EXIT_ERROR
    return EXIT_CHANGES if detailed_exitcode and plan.has_changes else EXIT_OK


@cli.command("apply", short_help="Create the snapshots due, delete what retention no longer keeps.")
@selection(timed=True)
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help=(
        "Carry out a saved plan (from `plan --out`) as far as a fresh plan agrees; "
        "refuse it whole if it asks for more, is older than --max-plan-age "
        "or comes from another configuration."
    ),
)
@click.option(
    "--max-plan-age",
    callback=_plan_age,
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="How old a saved plan may be (e.g. 12h, 2d).",
)
@click.option("--dry-run", is_flag=True, help="Print what apply would do; call no write endpoint.")
@click.option(
    "--parallel",
    type=click.IntRange(min=1, max=10000),
    help=(
        "At most N snapshots in flight per account "
        "(default: the policy's, else as many as the account's request budget allows)."
    ),
)
@click.option(
    "--metrics-file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a Prometheus textfile (for node_exporter) after the run.",
)
@click.option(
    "--report",
    "report_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write a JSON report of the run: every target, decision, outcome and notification.",
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help=(
        "Print only failures (on stderr): no progress, no result lines. The exit code is the same."
    ),
)
def apply_command(
    loaded: config.LoadedConfig,
    verbose: bool,
    whole: bool,
    plan_file: Path | None,
    dry_run: bool,
    parallel: int | None,
    metrics_file: Path | None,
    report_file: Path | None,
    max_plan_age: timedelta,
    quiet: bool,
) -> int:
    """Create the snapshots that are due and delete what retention no longer keeps.
    A run with nothing due prints nothing (unless -v), so cron mails only when something
    happened; with --quiet, only when something failed.

    \b
    Exit codes: 0 every target succeeded, 1 all failed or a critical error,
    2 some failed, 3 another run holds the lock,
    130 / 143 stopped by SIGINT / SIGTERM.
    \b
    Examples:
      snapshot-policy apply          # in the folder of snapshots.config
      snapshot-policy apply --policy snapshot-policy.yaml --dry-run
      snapshot-policy plan --out plan.json
      snapshot-policy apply --plan plan.json
    """
    from snapshot_policy.engine import run

    if quiet and (verbose or dry_run):
        raise click.UsageError(
            f"--quiet prints only failures, and {'-v' if verbose else '--dry-run'} "
            "asks for more: give one of them"
        )
    if loaded.critical:
        print_timed(current_clock(), "Nothing applied: fix the errors above.", err=True)
        return EXIT_ERROR
    context = run.RunContext.of(loaded)
    # A saved plan is not among them: it is a proposal whoever wrote it (planfile.agreed).
    files = context.files(**{"--report": report_file, "--metrics-file": metrics_file})
    written = {"log_file"} if dry_run else set(files)
    clock = current_clock()
    # Before anything changes, not after the snapshots.
    if not run_files_usable(files, loaded, written, clock):
        return EXIT_ERROR
    if not start_logging(loaded, verbose, clock=clock):
        return EXIT_ERROR
    if dry_run:
        return _dry_run(context, whole, plan_file, max_plan_age)
    from snapshot_policy.engine.execute import Stop

    stop = Stop()
    # Progress lines wait until a target does something: none for a run with nothing due.
    progress = _no_progress if quiet else ApplyProgress(hold=True, now=clock)
    if loaded.legacy:  # what snapshots.py printed to its cronjob.log (README "Logs")
        progress.note("Starting snapshot management script...")
    try:
        with stopped_by_signals(stop), run_lock(loaded.settings.lock_file):
            if loaded.legacy:
                progress.note(f"Lock acquired successfully (PID: {os.getpid()})")
                progress.note(f"Found {len(loaded.isolated_files)} configuration file(s).")
            with progress:
                report = run.apply(
                    context,
                    whole,
                    clock,
                    plan_file,
                    parallel,
                    metrics_file,
                    report_file,
                    progress,
                    max_plan_age,
                    stop,
                )
    except LockHeld as error:
        print_timed(clock, str(error), err=True)
        return EXIT_LOCKED
    except (PlanFileError, OSError) as error:
        progress.release()
        print_timed(clock, redact(str(error), loaded.secrets), err=True)
        return EXIT_ERROR
    stopped = stop.reason if stop.is_set() else None
    _say_end(clock, report, progress, loaded.legacy, quiet, verbose, stopped)
    return EXIT_SIGNALLED[stopped] if stopped else report.exit_code


def _dry_run(
    context: RunContext, whole: bool, plan_file: Path | None, max_plan_age: timedelta
) -> int:
    """`apply --dry-run`: print the plan apply would carry out; change nothing."""
    from snapshot_policy.engine import run

    loaded = context.loaded
    try:
        plan, failures, cost = run.priced_dry_run(
            context, whole, current_time(), plan_file, max_plan_age
        )
    except PlanFileError as error:
        click.echo(redact(str(error), loaded.secrets), err=True)
        return EXIT_ERROR
    click.echo(
        render.fit(
            f"Dry run: apply{f' --plan {plan_file}' if plan_file else ''} would do the "
            "following; nothing was changed."
        )
        + "\n"
    )
    print_text(render.plan_text(plan, failures, cost), styled=True)
    return EXIT_ERROR if failures else EXIT_OK


def _say_end(
    clock: Clock,
    report: RunReport,
    progress: ApplyProgress | _NoProgress,
    legacy: bool,
    quiet: bool,
    verbose: bool,
    stopped: str | None,
) -> None:
    """What apply prints once its run is over (README "Logs and the cron output"): the result
    lines and summary when the run did something, failed, was `stopped` (by that signal) or is
    `verbose`; with `quiet` only the failures; nothing for a run with nothing due."""
    if quiet:
        if render.report_failed(report) or stopped:
            print_timed(clock, render.report_text(report, failed_only=True), err=True)
            print_timed(clock, render.fit(render.report_summary(report)), err=True)
            _say_legacy_end(clock, legacy, report, completed=False)
    elif verbose or stopped or not render.uneventful(report):
        progress.release()
        print_timed(clock, render.report_text(report))
        print_timed(clock, render.fit(render.report_summary(report)), err=True)
        _say_legacy_end(clock, legacy, report, completed=not stopped)
    if stopped:
        print_timed(
            clock,
            render.fit(
                f"Stopped by {stopped}: no snapshot or deletion was started after it; "
                "every after hook owed ran; snapshots still being made are adopted by the next "
                "run."
            ),
            err=True,
        )


def print_timed(clock: Clock, text: str, err: bool = False) -> None:
    """Print `text` (a line, or lines each ending in a newline) as apply prints: each line
    after the run's time under cron (logs.say)."""
    if text and not text.endswith("\n"):
        text += "\n"
    say(sys.stderr if err else sys.stdout, text, clock())


def _say_legacy_end(clock: Clock, legacy: bool, report: RunReport, completed: bool) -> None:
    """In a legacy layout, the lines snapshots.py ended its cronjob.log with
    (runlog.cron_end_lines)."""
    if not legacy:
        return
    from snapshot_policy.engine import runlog

    print_timed(
        clock, "".join(line + "\n" for line in runlog.cron_end_lines(report, completed)), err=True
    )


class _NoProgress:
    """The progress of `apply --quiet`: shows nothing."""

    def __call__(self, target: object, stage: str) -> None:
        pass

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def release(self) -> None:
        pass

    def note(self, line: str) -> None:
        pass


_no_progress = _NoProgress()


@contextmanager
def stopped_by_signals(stop) -> Iterator[None]:
    """While applying, SIGTERM (systemd's and a container's stop) and SIGINT (Ctrl-C) ask the
    run to stop cleanly (execute.Stop) instead of killing it mid-way.

    The signals are blocked in this thread, so in every thread the run starts, and taken by
    one thread that waits for them (sigwait), as POSIX advises for threaded programs: no other
    thread's wait is interrupted, and a timed wait that a signal interrupts may never wake
    again under a C library that shifts the clock (libfaketime, as the tests run)."""
    if (
        threading.current_thread() is not threading.main_thread()
    ):  # only the main thread may handle signals
        yield
        return
    stopping = {signal.SIGTERM, signal.SIGINT}
    over = threading.Event()

    def take() -> None:
        while True:
            signum = signal.sigwait(stopping)
            if over.is_set():
                return
            stop.set(signal.Signals(signum).name)

    previous = signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    taker = threading.Thread(target=take, name="signals", daemon=True)
    taker.start()
    try:
        yield
    finally:
        over.set()
        signal.pthread_kill(taker.ident, signal.SIGTERM)  # wakes it; it ends without a stop
        taker.join()
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@cli.command("validate")
@selection
@click.option(
    "--online",
    is_flag=True,
    help="Also check that tokens work and the servers exist (read-only API calls).",
)
def validate_command(loaded: config.LoadedConfig, verbose: bool, whole: bool, online: bool) -> int:
    """Check the configuration and print every problem at once. No API call unless --online.

    \b
    Examples:
      snapshot-policy validate --policy snapshot-policy.yaml
      snapshot-policy validate --config snapshots.config droplet1.json
    """
    failures = list(loaded.failed)
    matched: dict | None = None
    # The log file only when the clouds are asked: a check of the files alone writes nothing.
    if not start_logging(loaded, verbose, to_file=online and not loaded.critical):
        return EXIT_ERROR
    if online and not loaded.critical:
        from snapshot_policy.engine import run

        matched, found = run.check_online(run.RunContext.of(loaded))
        failures += found
        for failure in found:
            click.echo(escape_controls(f"{failure.target}: {failure.reason}"), err=True)
        click.echo(render.matched_text(matched, {f.target for f in found}), nl=False)
    if loaded.errors or failures:
        online_failures = len({f.target for f in failures[len(loaded.failed) :]})
        counts = (
            [f"{len(loaded.errors)} error(s) in {len(loaded.files)} file(s)"]
            if loaded.errors or loaded.failed
            else []
        )
        if online_failures:
            counts.append(f"{online_failures} target(s) failed the online check")
        click.echo("; ".join(counts) + ".", err=True)
        return EXIT_ERROR
    checked = " and checked online" if online else ""
    servers = f", {sum(map(len, matched.values()))} server(s)" if matched is not None else ""
    click.echo(
        f"{len(loaded.files)} file(s) valid{checked}: {len(loaded.targets)} target(s){servers}."
    )
    return EXIT_OK
