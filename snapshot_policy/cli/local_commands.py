"""The commands that need no cloud account: simulate, migrate, the sandbox, the demo and
shell completion."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import click
from click.shell_completion import get_completion_class

from snapshot_policy import config
from snapshot_policy.cli.app import (
    EXIT_ERROR,
    EXIT_OK,
    cli,
    current_clock,
    current_time,
    main,
    selection,
)
from snapshot_policy.config.migrate import migrate
from snapshot_policy.config.policy import load_policy, prices
from snapshot_policy.core import backups
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import PROVIDERS, Price, RetentionPolicy
from snapshot_policy.core.simulate import Projection, simulate, steady_state
from snapshot_policy.output import render
from snapshot_policy.output.chart import survivors_svg
from snapshot_policy.state.statefiles import WORLD_READABLE, StateFileError, write_atomic

_COUNT = click.IntRange(min=0)


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


def _start(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime:
    if value is None:
        return current_time().replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO-8601 time such as 2026-01-31T03:00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


@cli.command("simulate", short_help="Show what a retention policy keeps over simulated time.")
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
@click.option(
    "--output",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Print the simulation for people (text) or as a JSON document (json).",
)
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
@click.option(
    "--server-price",
    "server_price",
    type=click.FloatRange(min=0, min_open=True, max=1_000_000),
    metavar="AMOUNT",
    help=(
        "Also compare with the provider's own backups for the same rules: the server's "
        "monthly price, in the projection's currency (needs --snapshot-size and a provider)."
    ),
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
    server_price: float | None,
    **rules: object,
) -> int:
    """Show which snapshots a retention policy keeps over simulated time, and with
    --snapshot-size what it stores and costs once every rule is full. No API call.

    \b
    Examples: a week of dailies and a month of weeklies, over 60 days;
    the rules of a policy's target; two policies' monthly cost at 20 GB:
      snapshot-policy simulate --keep-daily 7 --keep-weekly 4 --days 60
      snapshot-policy simulate --policy snapshot-policy.yaml \\
          --target web --days 400
      snapshot-policy simulate --keep-last 30 --snapshot-size 20
      snapshot-policy simulate --keep-daily 7 --keep-weekly 4 \\
          --keep-monthly 6 --snapshot-size 20
    """
    if (provider or price or server_price) and snapshot_gb is None:
        raise click.UsageError(
            "--provider, --price and --server-price price the projection: "
            "give --snapshot-size GB too"
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
    comparison = None
    if server_price is not None and projection is not None:
        comparison = _backups(policy, zone, start, runs_per_day, provider, server_price, projection)
    click.echo(
        render.simulation_json(result, projection, comparison)
        if output == "json"
        else render.simulation_text(result, projection, comparison),
        nl=False,
    )
    if chart_file is not None:
        try:
            # A picture of no secret, to open in a browser or publish: readable like any
            # file one makes (the metrics file is written so too), not owner-only.
            write_atomic(chart_file, survivors_svg(result), "chart file", WORLD_READABLE)
        except StateFileError as error:
            click.echo(str(error), err=True)
            return EXIT_ERROR
        click.echo(f"Chart written to {chart_file}.", err=True)
    return EXIT_OK


def _backups(
    policy: RetentionPolicy,
    zone: ZoneInfo,
    start: datetime,
    runs_per_day: int,
    provider: str | None,
    server_price: float,
    projection: Projection,
) -> backups.Comparison:
    """Snapshots at the projection's price against `provider`'s backups for the same rules,
    for a server of `server_price` a month in that price's currency."""
    if provider is None:
        raise click.UsageError(
            "--server-price compares with one provider's backups: give --provider "
            "digitalocean or hetzner (or --policy with --target)"
        )
    _, price = projection.prices[0]
    need = backups.needs(policy, zone, start, runs_per_day)
    monthly = price.monthly(projection.steady.average * projection.size_gb)
    return backups.compare(
        provider, need, server_price, price.currency, projection.size_gb, monthly
    )


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


def _reads_a_legacy_layout(command: Callable) -> Callable:
    """Refuse, before loading, a folder that holds both formats when migrate is told neither:
    only the snapshots.py layout can be migrated, so the refusal names the option that picks
    it (config.load's refusal also offers --policy, which migrate turns down)."""

    @functools.wraps(command)
    def wrapper(**options):
        if (
            options["policy"] is None
            and options["legacy_config"] is None
            and not options["server_files"]
        ):
            _refuse_both_formats(Path("."), options["out_file"], options["force"])
        return command(**options)

    return wrapper


def _refuse_both_formats(cwd: Path, out_file: Path | None, force: bool) -> None:
    """Raise a usage error naming the options to give if `cwd` holds a policy beside a
    snapshots.py layout; the same check as `config.load`'s, with migrate's own way out."""
    both = config.both_formats(cwd)
    if not both:
        return
    policy, found, option = both
    message = (
        f"both {policy} and {found} are here, and migrate reads only the snapshots.py layout: "
        f"give {option}"
    )
    if out_file is not None and _holds_text(out_file) and not force:
        message += (
            f", and --force to replace {out_file} (edits made to it are lost) or --out another file"
        )
    elif out_file is None and not _holds_text(policy):
        message += (
            f" and --out {config.POLICY_FILE} ({policy} is empty, "
            f"as `migrate > {config.POLICY_FILE}` leaves it: --out replaces it)"
        )
    raise click.UsageError(message)


def _holds_text(path: Path) -> bool:
    """True if `path` is a regular file (not a link: writing refuses those anyway) with more
    than white space in it: a policy someone may have edited, which --out keeps unless
    --force. An empty one, as `migrate > FILE` leaves it, holds nothing to lose."""
    try:
        return not path.is_symlink() and path.is_file() and bool(path.read_bytes().strip())
    except OSError:
        return True  # unreadable: assume it holds something


@cli.command("migrate")
@_reads_a_legacy_layout
@selection
@click.option(
    "--out",
    "out_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help=(
        "Write the policy to FILE (replaced in one step, never through a symbolic link) "
        "instead of printing it. An existing FILE is kept unless --force."
    ),
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace the --out FILE even if it exists (edits made to it are lost).",
)
def migrate_command(
    loaded: config.LoadedConfig, verbose: bool, whole: bool, out_file: Path | None, force: bool
) -> int:
    """Turn a snapshots.py layout into an equivalent YAML policy. Secrets become env: references.

    \b
    Example, in the folder of snapshots.config:
      snapshot-policy migrate --out snapshot-policy.yaml
    then run with --policy snapshot-policy.yaml (until you switch,
    run the old layout with --config snapshots.config).
    """
    if force and out_file is None:
        raise click.UsageError("--force replaces the --out FILE: give --out FILE too")
    if not loaded.legacy:
        raise click.UsageError(
            "migrate reads a snapshots.py layout (snapshots.config, configs/*.json); "
            f"this is a YAML policy already: give --config {config.LEGACY_CONFIG} "
            "or the server files to migrate"
        )
    if loaded.errors or loaded.failed or loaded.document is None:
        click.echo(
            "Nothing migrated: fix the errors above first, so no server is left out.", err=True
        )
        return EXIT_ERROR
    if out_file is not None and not force and _holds_text(out_file):
        click.echo(
            f"Nothing migrated: {out_file} exists and may hold your edits; "
            "give --force to replace it, or --out another file to compare.",
            err=True,
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


@cli.command("sandbox", short_help="Serve a fake DigitalOcean, Hetzner, Telegram and webhook sink.")
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


@cli.command("demo", short_help="Plan and apply on a local fake cloud: offline, no account.")
@click.option(
    "--keep",
    "keep_dir",
    type=click.Path(path_type=Path, file_okay=False),
    metavar="DIR",
    help=(
        "Work in DIR (new or empty) and keep it: the policy, the run's files and the fake "
        "cloud's final state, with the commands to run the demo's commands again."
    ),
)
def demo_command(keep_dir: Path | None) -> int:
    """Plan and apply on a local fake cloud, offline, with no account.

    Starts the sandbox with servers on both providers, shows the plan, applies it through the
    real SDKs, shows the notifications sent and plans again.

    \b
    Examples:
      snapshot-policy demo
      snapshot-policy demo --keep snapshot-policy-demo
    """
    from snapshot_policy.cli.demo import run_demo

    return run_demo(main, current_clock(), click.echo, keep=keep_dir)


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
