"""Command line: argv in, one short flow per command, an exit code out (docs/promises.md §3).

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
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from click.shell_completion import get_completion_class

from snapshot_policy import config
from snapshot_policy.config.migrate import migrate
from snapshot_policy.config.policy import load_policy, prices
from snapshot_policy.config.secrets import unprotected
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import PROVIDERS, Clock, Price, RetentionPolicy
from snapshot_policy.core.redaction import escape_controls, hide, redact, redacted_output
from snapshot_policy.core.simulate import Projection, simulate, steady_state
from snapshot_policy.output import planfile, render
from snapshot_policy.output.chart import survivors_svg
from snapshot_policy.output.logs import setup_logging
from snapshot_policy.output.planfile import PlanFileError
from snapshot_policy.output.progress import ApplyProgress
from snapshot_policy.state.runlock import LockHeld, run_lock
from snapshot_policy.state.statefiles import StateFileError, check_files, write_atomic

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


def _zone(ctx: click.Context, param: click.Parameter, value: str | None) -> ZoneInfo | None:
    if value is None:
        return None
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(
            f"{value!r} is not an IANA time zone name such as UTC or Europe/Berlin"
        ) from None


def _duration(ctx: click.Context, param: click.Parameter, value: str | None) -> Duration | None:
    if value is None:
        return None
    try:
        return Duration.parse(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error


def system_clock() -> datetime:
    """The wall clock, read here and nowhere else: `main` hands it (or a test's) down."""
    return datetime.now(timezone.utc)


def _clock() -> Clock:
    """The clock `main` was given, for the command being run."""
    return click.get_current_context().find_root().obj


def _now() -> datetime:
    return _clock()()


def _plan_age(ctx: click.Context, param: click.Parameter, value: str) -> timedelta:
    try:
        return Duration.parse(value).as_timedelta()
    except ValueError as error:
        raise click.BadParameter(f"{error}; give hours or days, e.g. 24h or 2d") from error


def _start(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime:
    if value is None:
        return _now().replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO-8601 time such as 2026-01-31T03:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


_COUNT = click.IntRange(min=0)


def selection(command: Callable) -> Callable:
    """The options every command that reads the configuration shares (docs/promises.md §3)."""

    @click.option(
        "--policy", type=click.Path(path_type=Path, dir_okay=False), help="A YAML policy file."
    )
    @click.option(
        "--config",
        "legacy_config",
        type=click.Path(path_type=Path, dir_okay=False),
        help="A snapshots.config (legacy layout).",
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
            if verbose or not problem.warning:
                click.echo(str(problem), err=True)
        for warning in unprotected(loaded.files, loaded.secrets):  # always, as ssh does
            click.echo(warning, err=True)
        unknown = sorted(
            set(targets) - {t.name for t in loaded.targets} - {f.target for f in loaded.failed}
        )
        if unknown:
            raise click.UsageError(_unknown_targets(loaded, unknown))
        if targets:
            loaded = _only(loaded, set(targets))
        return command(loaded=loaded, verbose=verbose, whole=not targets, **options)

    return wrapper


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


def _start_logging(loaded: config.LoadedConfig, verbose: bool, to_file: bool = True) -> bool:
    """Log as every command that talks to a cloud does: the configured file (unless `to_file`
    is false), the console with -v, secrets masked on both; SDK warnings such as retries go
    there too, never to Python's unmasked last-resort handler. Print why and return False if
    the log cannot be set up."""
    settings = loaded.settings
    try:
        setup_logging(
            settings.log_file if to_file else None,
            settings.log_max_bytes,
            settings.log_backup_count,
            settings.log_level,
            verbose,
            loaded.secrets,
        )
    except (OSError, ValueError) as error:
        click.echo(str(error), err=True)
        return False
    return True


def _only(loaded: config.LoadedConfig, names: set[str]) -> config.LoadedConfig:
    return replace(
        loaded,
        targets=tuple(t for t in loaded.targets if t.name in names),
        failed=tuple(f for f in loaded.failed if f.target in names),
    )


def _show(text: str, styled: bool) -> None:
    """Print `text`; a plan in colour when stdout is a terminal (rich honours NO_COLOR)."""
    if styled and sys.stdout.isatty():
        from rich.console import Console

        Console(file=sys.stdout, highlight=False, soft_wrap=True).print(render.styled(text), end="")
    else:
        click.echo(text, nl=False)


def _files_usable(
    files: dict[str, Path | str | None], loaded: config.LoadedConfig, written: set[str]
) -> bool:
    """Say why, and return False, if the run's files would clash, overwrite a configuration
    file, or cannot be used (statefiles.check_files); `written` are those this command writes."""
    try:
        check_files(files, loaded.files, read_only=set(files) - written)
    except StateFileError as error:
        click.echo(str(error), err=True)
        return False
    return True


@cli.command("plan")
@selection
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
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
    if not _files_usable(files, loaded, written={"log_file", "plan --out"}):
        return EXIT_ERROR
    if not _start_logging(loaded, verbose):
        return EXIT_ERROR
    try:
        plan, failures = run.plan(context, whole, _now())
    except StateFileError as error:
        click.echo(str(error), err=True)
        return EXIT_ERROR
    cost = loaded.prices
    if output == "json":
        _show(planfile.plan_json(plan, failures, cost), styled=False)
    else:
        _show(render.plan_text(plan, failures, cost), styled=True)
    if plan_file is not None:
        try:
            planfile.save(plan_file, plan, failures, cost)
        except StateFileError as error:
            click.echo(f"cannot save the plan to {plan_file}: {error.reason}", err=True)
            return EXIT_ERROR
    if failures:
        return EXIT_ERROR
    return EXIT_CHANGES if detailed_exitcode and plan.has_changes else EXIT_OK


@cli.command("apply")
@selection
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
) -> int:
    """Create the snapshots that are due and delete what retention no longer keeps.

    \b
    Exit codes: 0 every target succeeded, 1 all failed or a critical error,
    2 some failed, 3 another run holds the lock, 130 / 143 stopped by SIGINT / SIGTERM.
    \b
    Examples:
      snapshot-policy apply                       # in the folder of snapshots.config
      snapshot-policy apply --policy snapshot-policy.yaml --dry-run
      snapshot-policy plan --out plan.json && snapshot-policy apply --plan plan.json
    """
    from snapshot_policy.engine import run

    if loaded.critical:
        click.echo("Nothing applied: fix the errors above.", err=True)
        return EXIT_ERROR
    context = run.RunContext.of(loaded)
    # A saved plan is not among them: it is a proposal whoever wrote it (planfile.agreed).
    files = context.files(**{"--report": report_file, "--metrics-file": metrics_file})
    written = {"log_file"} if dry_run else set(files)
    if not _files_usable(
        files, loaded, written
    ):  # before anything changes, not after the snapshots
        return EXIT_ERROR
    if not _start_logging(loaded, verbose):
        return EXIT_ERROR
    if dry_run:
        try:
            plan, failures = run.dry_run(context, whole, _now(), plan_file, max_plan_age)
        except PlanFileError as error:
            click.echo(redact(str(error), loaded.secrets), err=True)
            return EXIT_ERROR
        click.echo(
            f"Dry run: apply{f' --plan {plan_file}' if plan_file else ''} would do the following; "
            "nothing was changed.\n"
        )
        _show(render.plan_text(plan, failures, loaded.prices), styled=True)
        return EXIT_ERROR if failures else EXIT_OK
    from snapshot_policy.engine.execute import Stop

    stop = Stop()
    try:
        with _stopped_by_signals(stop), run_lock(loaded.settings.lock_file):
            with ApplyProgress() as progress:
                report = run.apply(
                    context,
                    whole,
                    _clock(),
                    plan_file,
                    parallel,
                    metrics_file,
                    report_file,
                    progress,
                    max_plan_age,
                    stop,
                )
    except LockHeld as error:
        click.echo(str(error), err=True)
        return EXIT_LOCKED
    except (PlanFileError, OSError) as error:
        click.echo(redact(str(error), loaded.secrets), err=True)
        return EXIT_ERROR
    click.echo(render.report_text(report), nl=False)
    click.echo(render.report_summary(report), err=True)
    if stop.is_set():
        click.echo(
            f"Stopped by {stop.reason}: no snapshot or deletion was started after it; "
            "every after hook owed ran; snapshots still being made are adopted by the next run.",
            err=True,
        )
        return EXIT_SIGNALLED[stop.reason]
    return report.exit_code


@contextmanager
def _stopped_by_signals(stop) -> Iterator[None]:
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
    # The log file only when the clouds are asked: a check of the files alone writes nothing.
    if not _start_logging(loaded, verbose, to_file=online and not loaded.critical):
        return EXIT_ERROR
    if online and not loaded.critical:
        from snapshot_policy.engine import run

        failures += run.check_online(run.RunContext.of(loaded))
        for failure in failures[len(loaded.failed) :]:
            click.echo(escape_controls(f"{failure.target}: {failure.reason}"), err=True)
    if loaded.errors or failures:
        online_failures = len(failures) - len(loaded.failed)
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
    click.echo(f"{len(loaded.files)} file(s) valid{checked}: {len(loaded.targets)} target(s).")
    return EXIT_OK


@cli.command("simulate")
@click.option("--keep-last", type=_COUNT, default=0, help="Keep the N newest snapshots.")
@click.option(
    "--keep-hourly",
    type=_COUNT,
    default=0,
    help="Keep the newest snapshot of each of the last N hours that have one.",
)
@click.option(
    "--keep-daily",
    type=_COUNT,
    default=0,
    help="Keep the newest snapshot of each of the last N days that have one.",
)
@click.option(
    "--keep-weekly",
    type=_COUNT,
    default=0,
    help="Keep the newest snapshot of each of the last N ISO weeks that have one.",
)
@click.option(
    "--keep-monthly",
    type=_COUNT,
    default=0,
    help="Keep the newest snapshot of each of the last N months that have one.",
)
@click.option(
    "--keep-yearly",
    type=_COUNT,
    default=0,
    help="Keep the newest snapshot of each of the last N years that have one.",
)
@click.option(
    "--keep-within",
    callback=_duration,
    metavar="DURATION",
    help="Keep every snapshot within DURATION of the newest (36h, 7d, 2w, 3m, 1y).",
)
@click.option(
    "--keep-within-hourly",
    callback=_duration,
    metavar="DURATION",
    help="Keep the newest snapshot of each hour within DURATION of the newest snapshot.",
)
@click.option(
    "--keep-within-daily",
    callback=_duration,
    metavar="DURATION",
    help="Keep the newest snapshot of each day within DURATION of the newest snapshot.",
)
@click.option(
    "--keep-within-weekly",
    callback=_duration,
    metavar="DURATION",
    help="Keep the newest snapshot of each ISO week within DURATION of the newest snapshot.",
)
@click.option(
    "--keep-within-monthly",
    callback=_duration,
    metavar="DURATION",
    help="Keep the newest snapshot of each month within DURATION of the newest snapshot.",
)
@click.option(
    "--keep-within-yearly",
    callback=_duration,
    metavar="DURATION",
    help="Keep the newest snapshot of each year within DURATION of the newest snapshot.",
)
@click.option(
    "--timezone",
    "zone",
    callback=_zone,
    help=(
        "IANA time zone in which days, weeks, months and years are counted "
        "(default: the target's, else UTC)."
    ),
)
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Take the retention and time zone of a target of this YAML policy.",
)
@click.option(
    "--target",
    "target_name",
    metavar="NAME",
    help="Which of the policy's targets (needed when it has several).",
)
@click.option(
    "--start",
    callback=_start,
    metavar="ISO-8601",
    help="Time of the first simulated run (default: now). Without an offset it is UTC.",
)
@click.option(
    "--days",
    type=click.IntRange(min=1, max=36600),
    default=30,
    show_default=True,
    help="Number of days to simulate.",
)
@click.option(
    "--runs-per-day",
    type=click.IntRange(min=1, max=1440),
    default=1,
    show_default=True,
    help="Runs a day, evenly spaced from the start; each makes one snapshot.",
)
@click.option("--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--chart",
    "chart_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also draw which snapshots survive, per rule, into this SVG file.",
)
@click.option(
    "--snapshot-size",
    "snapshot_gb",
    type=click.FloatRange(min=0, min_open=True, max=1_000_000),
    metavar="GB",
    help=(
        "Also project the steady-state count, size and monthly cost for snapshots of this many GB."
    ),
)
@click.option(
    "--provider",
    type=click.Choice(PROVIDERS),
    help=(
        "Price the projection as this provider does "
        "(default: the --policy target's provider, else both)."
    ),
)
@click.option(
    "--price",
    type=(click.FloatRange(min=0, max=1000), str),
    metavar="AMOUNT CURRENCY",
    help="Price the projection at AMOUNT per GB-month in CURRENCY (e.g. 0.05 EUR) instead.",
)
def simulate_command(
    zone: ZoneInfo | None,
    policy_file: Path | None,
    target_name: str | None,
    start: datetime,
    days: int,
    runs_per_day: int,
    output: str,
    chart_file: Path | None,
    snapshot_gb: float | None,
    provider: str | None,
    price: tuple[float, str] | None,
    **rules: object,
) -> int:
    """Show which snapshots a retention policy keeps over simulated time, and with
    --snapshot-size what it stores and costs once every rule is full. No API call.

    \b
    Examples: a week of dailies and a month of weeklies, over 60 days;
    the rules of a policy's target; two policies' monthly cost at 20 GB:
      snapshot-policy simulate --keep-daily 7 --keep-weekly 4 --days 60
      snapshot-policy simulate --policy snapshot-policy.yaml --target web --days 400
      snapshot-policy simulate --keep-last 30 --snapshot-size 20
      snapshot-policy simulate --keep-daily 7 --keep-weekly 4 --keep-monthly 6 --snapshot-size 20
    """
    if (provider or price) and snapshot_gb is None:
        raise click.UsageError(
            "--provider and --price price the projection: give --snapshot-size GB too"
        )
    policy = RetentionPolicy(**rules)
    known = None
    if policy_file is not None:
        if policy.has_rules:
            raise click.UsageError("give either --policy or --keep-* rules, not both")
        loaded = load_policy(policy_file, read_secrets=False)
        for problem in loaded.problems:
            click.echo(str(problem), err=True)
        if not loaded.targets:
            return EXIT_ERROR
        names = [t.name for t in loaded.targets]
        if target_name is None and len(names) > 1:
            raise click.UsageError(
                f"the policy has several targets; choose one with --target: {', '.join(names)}"
            )
        chosen = (
            loaded.targets[0]
            if target_name is None
            else next((t for t in loaded.targets if t.name == target_name), None)
        )
        if chosen is None:
            raise click.UsageError(f"no target named {target_name}; targets: {', '.join(names)}")
        policy, zone, known = chosen.retention, zone or ZoneInfo(chosen.timezone), loaded.prices
        provider = provider or chosen.account.provider
    if not policy.has_rules:
        raise click.UsageError(
            "give at least one retention rule, e.g. --keep-daily 7, or --policy FILE"
        )
    if chart_file is not None and chart_file.suffix.lower() != ".svg":
        raise click.UsageError(
            f"--chart draws SVG only; name the file {chart_file.with_suffix('.svg')} "
            "(browsers and converters open it)"
        )
    zone = zone or ZoneInfo("UTC")
    result = simulate(policy, zone, start, days, runs_per_day)
    projection = None
    if snapshot_gb is not None:
        try:
            steady = steady_state(policy, zone, start, runs_per_day)
        except ValueError as error:
            raise click.ClickException(str(error)) from error
        projection = Projection(steady, snapshot_gb, _prices_for(price, provider, known))
    click.echo(
        render.simulation_json(result, projection)
        if output == "json"
        else render.simulation_text(result, projection),
        nl=False,
    )
    if chart_file is not None:
        try:
            write_atomic(chart_file, survivors_svg(result), "chart file")
        except StateFileError as error:
            click.echo(str(error), err=True)
            return EXIT_ERROR
        click.echo(f"Chart written to {chart_file}.", err=True)
    return EXIT_OK


def _prices_for(
    price: tuple[float, str] | None, provider: str | None, known: Mapping[str, Price] | None
) -> tuple[tuple[str, Price], ...]:
    """The prices a projection is shown at: --price, else the provider's (`known`, from the
    policy's settings; None: the defaults), else every provider's, each named."""
    if price is not None:
        amount, currency = price
        code = currency.strip().upper()
        if len(code) != 3 or not code.isascii() or not code.isalpha():
            raise click.BadParameter(
                f"{currency!r} is not a currency code such as USD or EUR", param_hint="--price"
            )
        return (("--price", Price(amount, code)),)
    known = prices({}) if known is None else known
    return tuple((name, known[name]) for name in ([provider] if provider else PROVIDERS))


@cli.command("migrate")
@selection
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help=(
        "Write the policy to FILE (replaced in one step, never through a symbolic link) "
        "instead of printing it."
    ),
)
def migrate_command(
    loaded: config.LoadedConfig, verbose: bool, whole: bool, out_file: Path | None
) -> int:
    """Turn a snapshots.py layout into an equivalent YAML policy. Secrets become env: references.

    \b
    Example, in the folder of snapshots.config:
      snapshot-policy migrate --out snapshot-policy.yaml
    then run with --policy snapshot-policy.yaml (until you switch,
    run the old layout with --config snapshots.config).
    """
    if not loaded.legacy:
        raise click.UsageError(
            "migrate reads a snapshots.py layout (snapshots.config, configs/*.json); "
            "this is a YAML policy already"
        )
    if loaded.errors or loaded.failed or loaded.document is None:
        click.echo(
            "Nothing migrated: fix the errors above first, so no server is left out.", err=True
        )
        return EXIT_ERROR
    migration = migrate(
        loaded.document,
        loaded.base,
        out_file,
        only=None if whole else {t.name for t in loaded.targets},
    )
    if out_file is None:
        click.echo(migration.text, nl=False)
    else:
        try:
            write_atomic(out_file, migration.text, "policy file")
        except StateFileError as error:
            click.echo(str(error), err=True)
            return EXIT_ERROR
        click.echo(f"Wrote {out_file}: {len(loaded.targets)} target(s).", err=True)
    click.echo("Before using the policy, export:", err=True)
    for line in migration.exports:
        click.echo(f"  {line}", err=True)
    if out_file is not None:
        click.echo(f"Then run with --policy {out_file}.", err=True)
        beside = (
            out_file.name == config.POLICY_FILE
            and out_file.parent.resolve() == loaded.base.resolve()
        )
        if beside and (loaded.base / config.LEGACY_CONFIG).is_file():
            click.echo(
                "This folder now holds both formats, "
                "and a run given neither --policy nor --config refuses to guess which: "
                f"until you switch, run the old layout with --config {config.LEGACY_CONFIG}.",
                err=True,
            )
    return EXIT_OK


@cli.command("sandbox")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8765,
    show_default=True,
    help="Port on 127.0.0.1 (0 picks a free one).",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False),
    help=(
        "JSON state to start from (format: `snapshot_policy.sandbox` docs). "
        "Default: a small example fleet."
    ),
)
def sandbox_command(port: int, state_file: str | None) -> None:
    """Serve the local fake cloud (DigitalOcean, Hetzner, Telegram, webhooks) until Ctrl-C.

    \b
    Example, then point the tool at it with the variables it prints:
      snapshot-policy sandbox --port 8765
    """
    from snapshot_policy.sandbox import serve
    from snapshot_policy.sandbox.server import StateFileProblem

    try:
        serve(port, state_file)
    except StateFileProblem as error:
        raise click.ClickException(str(error)) from error
    except OSError as error:
        raise click.ClickException(
            f"cannot serve on 127.0.0.1:{port}: {error.strerror or error}; "
            "choose another port with --port"
        ) from error


@cli.command("demo")
def demo_command() -> int:
    """Plan and apply on a local fake cloud, offline, with no account.

    Starts the sandbox with servers on both providers, shows the plan, applies it through the
    real SDKs, shows the notifications sent and plans again.

    \b
    Example:
      snapshot-policy demo
    """
    from snapshot_policy.demo import run_demo

    return run_demo(main, _clock(), click.echo)


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion_command(shell: str) -> None:
    """Print the shell completion script for SHELL.

    \b
    Examples:
      snapshot-policy completion bash > /etc/bash_completion.d/snapshot-policy
      echo 'eval "$(snapshot-policy completion zsh)"' >> ~/.zshrc
    """
    script = get_completion_class(shell)(cli, {}, "snapshot-policy", "_SNAPSHOT_POLICY_COMPLETE")
    click.echo(script.source())


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
