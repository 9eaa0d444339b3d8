"""The YAML policy (docs/promises.md §4.2), and the one builder of targets, notification channels
and run settings from the policy's shape — the shape the legacy files are normalised into too
(`legacy.py`), so both formats become targets here and nowhere else.

The schema checks shapes; `build` checks what a schema cannot — time zones, cron
expressions, references between sections, unique names, secrets that resolve — and merges
`defaults` into each target. A key left out takes the `default` its schema declares, the one
place defaults are written. Every problem is collected; a policy with any error yields no
target at all, since half a policy could delete by the wrong rules.
"""

from __future__ import annotations

import hashlib
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from snapshot_policy.config import apprise_urls
from snapshot_policy.config.problems import ConfigError, Problem, path_text
from snapshot_policy.config.schemas import default, validate
from snapshot_policy.config.secrets import ENV_PREFIX, LiteralSecret, SecretError, resolve
from snapshot_policy.config.sources import Source, read_yaml
from snapshot_policy.core import pricing, transport
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    DIGITALOCEAN,
    HETZNER,
    PROVIDERS,
    Account,
    AppriseChannel,
    Channel,
    Consistency,
    Drill,
    Hooks,
    Price,
    RetentionPolicy,
    RunSettings,
    Safety,
    Schedule,
    Selector,
    TargetSpec,
    TelegramChannel,
    WebhookChannel,
)
from snapshot_policy.core.templates import payload_strings, template_errors

SCHEMA = "policy.schema.json"
TOKEN_VARIABLES = {DIGITALOCEAN: "DIGITALOCEAN_TOKEN", HETZNER: "HCLOUD_TOKEN"}
"""The variable an account without a token reads, per provider."""
NAME_FIELDS = ("server_name", "server_id", "target", "timestamp")
OWNER_DIGITS = 12
# RFC 9110's token: the characters an HTTP header name may have.
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def location_owner(path: Path) -> str:
    """Return the owner of a configuration that names none (`settings.owner`): the first 12
    hex digits of the SHA-256 of the absolute path of its file (a policy) or folder (a legacy
    layout), links resolved. The same file reached by another path is the same
    configuration; moved or renamed, it is another one."""
    return hashlib.sha256(os.fsencode(path.resolve())).hexdigest()[:OWNER_DIGITS]


def _default(pointer: str) -> Any:
    return default(SCHEMA, pointer)


@dataclass
class PolicyLoad:
    settings: RunSettings
    targets: list[TargetSpec] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    document: Mapping | None = None
    """The document the targets were built from; None when it could not be read or checked."""
    prices: dict[str, Price] = field(default_factory=lambda: prices({}))
    """What a GB of snapshots costs a month per provider, for the plan's storage lines."""


class _Checker:
    """Collects problems against one source, with the line of each key where known."""

    def __init__(self, source: Source, env: Mapping[str, str], read_secrets: bool, base: Path):
        self.source = source
        self.env = env
        self.read_secrets = read_secrets
        self.base = base
        self.problems: list[Problem] = []
        self.warnings: list[Problem] = []

    def add(self, path: tuple, message: str) -> None:
        self.problems.append(
            Problem(self.source.file, self.source.line_of(path), path_text(path), message)
        )

    def warn(self, path: tuple, message: str) -> None:
        """A finding that stops nothing: the policy loads, and validate shows it."""
        self.warnings.append(
            Problem(
                self.source.file, self.source.line_of(path), path_text(path), message, warning=True
            )
        )

    def secret(self, path: tuple, value: str | LiteralSecret, ascii_only: bool = False) -> str:
        """The secret `value` stands for; `ascii_only` for one sent in an HTTP header or URL."""
        if isinstance(value, LiteralSecret):
            return value.value  # a legacy file's secret: checked and trimmed where it was read
        if not self.read_secrets:
            return ""
        try:
            return resolve(value, self.env, self.base, ascii_only)
        except SecretError as error:
            self.add(path, str(error))
            return ""

    def url(self, path: tuple, url: str, what: str) -> None:
        problem = transport.url_problem(url, what)
        if problem is not None:
            self.add(path, problem)

    def zone(self, path: tuple, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            self.add(path, f"{name!r} is not an IANA time zone name such as UTC or Europe/Berlin")
        return name


def load_policy(
    path: Path, env: Mapping[str, str] | None = None, read_secrets: bool = True
) -> PolicyLoad:
    """Load the policy at `path`. Return its targets only if it has no error at all.

    Without `read_secrets` (for `simulate`, which calls no API) secrets are left empty and
    not looked up, so a policy can be tried on a machine that has none of them.
    """
    env = os.environ if env is None else env
    try:
        source = read_yaml(path)
    except ConfigError as error:
        return PolicyLoad(settings({}, path.parent), problems=list(error.problems))
    problems = validate(source.data, SCHEMA, source)
    if any(not p.warning for p in problems):
        return PolicyLoad(settings({}, path.parent), problems=problems)
    loaded = build(source, env, path.parent, read_secrets)
    loaded.problems[:0] = problems + _plain_http_warnings(source)
    loaded.document = source.data
    return loaded


def _plain_http_warnings(source: Source) -> list[Problem]:
    """A warning (shown with -v) for each webhook the policy lets send over plain http to
    another host, as it asked: docs/promises.md §5, invariant 11. Only scheme, host and port
    are shown; the path can be the secret."""
    warnings = []
    for name, channel in source.data.get("notifications", {}).items():
        url = channel.get("url")
        if channel.get("allow_plain_http") and transport.is_plain_http_elsewhere(str(url)):
            path = ("notifications", name, "url")
            message = (
                f"{transport.shown(str(url))}/… is plain http (allow_plain_http: true): the "
                "webhook's URL, headers and body cross the network in clear text"
            )
            warnings.append(
                Problem(source.file, source.line_of(path), path_text(path), message, warning=True)
            )
    return warnings


def build(
    source: Source, env: Mapping[str, str], base: Path, read_secrets: bool = True
) -> PolicyLoad:
    """Return the targets and run settings of `source.data`, a document of the policy's shape
    that its schema accepts, with every problem the schema cannot see. Relative paths and
    `file:` secrets start at `base`. A secret may also be a LiteralSecret (from a legacy
    file), taken as it is.
    """
    check = _Checker(source, env, read_secrets, base)
    data = source.data
    zone = check.zone(("timezone",), data.get("timezone", _default("timezone")))
    accounts = _accounts(check, data["accounts"])
    channels = _channels(check, data.get("notifications", {}))
    for key, what in (
        ("healthcheck_url", transport.HEALTHCHECK),
        ("telegram_api_url", transport.BOT_TOKEN),
    ):
        if key in data.get("settings", {}):
            check.url(("settings", key), data["settings"][key], what)
    defaults = data.get("defaults", {})
    owner = data.get("settings", {}).get("owner") or location_owner(Path(source.file))
    _check_target_keys(check, ("defaults",), defaults, channels)
    targets, seen = [], {}
    for index, raw in enumerate(data["targets"]):
        where = ("targets", index)
        if raw["name"] in seen:
            check.add(
                (*where, "name"),
                (
                    f"target name {raw['name']!r} is also used by targets[{seen[raw['name']]}]; "
                    "names must be unique"
                ),
            )
        seen.setdefault(raw["name"], index)
        if raw["account"] not in accounts:
            check.add(
                (*where, "account"),
                f"no account named {raw['account']!r}; accounts: {', '.join(accounts) or 'none'}",
            )
            continue
        _check_target_keys(check, where, raw, channels)
        if "server_name" in raw and len(raw.get("ids", ())) != 1:
            check.add(
                (*where, "server_name"),
                (
                    "stands for one server: select exactly one with ids, "
                    "or leave server_name out and each server keeps its own name"
                ),
            )
        _check_drill(check, (*where, "drill"), raw.get("drill"), accounts[raw["account"]])
        _check_overrides(check, where, raw, defaults, accounts[raw["account"]])
        _check_volumes(check, where, raw, accounts[raw["account"]])
        _check_copies(check, (*where, "copies"), raw.get("copies"), accounts[raw["account"]])
        if check.problems:
            continue  # building a target from keys already found wrong would only fail again
        target = _target(
            raw, defaults, zone, accounts[raw["account"]], channels, source.file, owner
        )
        if not target.retention.has_rules:
            check.add(
                (*where, "retention"),
                (
                    "no retention rule: set at least one above 0 here or in defaults, "
                    "e.g. keep_daily: 7"
                ),
            )
        _check_verified(check, where, raw, target)
        targets.append(target)
    _check_soft_delete(check, data.get("settings", {}))
    run_settings = settings(data.get("settings", {}), base, data.get("orphans", {}), owner)
    cost = prices(data.get("settings", {}))
    if check.problems:
        return PolicyLoad(run_settings, problems=check.problems + check.warnings, prices=cost)
    return PolicyLoad(run_settings, targets, problems=check.warnings, prices=cost)


def _accounts(check: _Checker, raw: Mapping) -> dict[str, Account]:
    accounts = {}
    for name, account in raw.items():
        provider = account["provider"]
        if "token" in account:
            token = check.secret(("accounts", name, "token"), account["token"], ascii_only=True)
        else:
            variable = TOKEN_VARIABLES[provider]
            token = ""
            if variable in check.env:  # set but empty is said so (secrets.resolve)
                token = check.secret(
                    ("accounts", name), ENV_PREFIX + variable, ascii_only=True
                )  # trimmed and checked like any token
            elif check.read_secrets:
                check.add(
                    ("accounts", name),
                    f"no token: set token (a literal, env:NAME or file:PATH) or export {variable}",
                )
        if "endpoint" in account:
            check.url(("accounts", name, "endpoint"), account["endpoint"], transport.API_TOKEN)
        accounts[name] = Account(
            name, provider, token, account.get("endpoint"), account.get("snapshot_limit")
        )
    return accounts


def _channels(check: _Checker, raw: Mapping) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for name, channel in raw.items():
        path = ("notifications", name)
        for key in ("message_success", "message_failure", "payload_success", "payload_failure"):
            for subpath, text in payload_strings(channel.get(key)):
                for message in template_errors(text):
                    check.add((*path, key, *subpath), message)
        common = {
            "timeout": channel.get("timeout", _default("$defs/timeout")),
            "retries": channel.get("retries", _default("$defs/retries")),
            "base_delay": channel.get("base_delay_between_retries", _default("$defs/base_delay")),
            "style": channel.get("style", _default("$defs/style")),
            "script": channel.get("script"),
        }
        if channel["type"] == "telegram":
            channels[name] = TelegramChannel(
                name=name,
                bot_token=check.secret((*path, "bot_token"), channel["bot_token"], ascii_only=True),
                chat_id=str(channel["chat_id"]),
                message_success=channel.get("message_success"),
                message_failure=channel.get("message_failure"),
                summary=channel.get("summary", _default("$defs/telegram_channel/summary")),
                **common,
            )
        elif channel["type"] == "apprise":
            channels[name] = _apprise_channel(check, name, channel, common)
        else:
            plain = channel.get("allow_plain_http", False)
            refused = transport.url_problem(channel["url"], transport.WEBHOOK, plain)
            if refused is not None and transport.is_plain_http_elsewhere(channel["url"]):
                refused += "; or, to send it so anyway, set allow_plain_http: true on this channel"
            if refused is not None:
                check.add((*path, "url"), refused)
            _check_headers(check, (*path, "headers"), channel.get("headers", {}))
            channels[name] = WebhookChannel(
                name=name,
                url=channel["url"],
                secret=check.secret((*path, "secret"), channel["secret"])
                if "secret" in channel
                else None,
                payload_success=channel.get("payload_success"),
                payload_failure=channel.get("payload_failure"),
                headers=dict(channel.get("headers", {})),
                allow_plain_http=plain,
                **common,
            )
    return channels


def _apprise_channel(check: _Checker, name: str, channel: Mapping, common: dict) -> AppriseChannel:
    """An apprise channel, each URL a secret read (env:, file:) and checked by apprise itself,
    and over plain http to another host only with allow_plain_http (as a webhook)."""
    path = ("notifications", name, "urls")
    plain = channel.get("allow_plain_http", False)
    urls, secrets = [], []
    for index, value in enumerate(channel["urls"]):
        url = check.secret((*path, index), value)
        if not url:
            continue  # not read (simulate), or its problem is already said
        checked = apprise_urls.check(url)
        if checked.problem is not None:
            check.add((*path, index), checked.problem)
        elif checked.plain_elsewhere and not plain:
            check.add(
                (*path, index),
                (
                    "goes over plain http to another host: its tokens and the messages would "
                    "cross the network in clear text; use the service's secure scheme (jsons://, "
                    "ntfys://, …), or, to send it so anyway, set allow_plain_http: true on this "
                    "channel"
                ),
            )
        urls.append(url)
        secrets += [url, *checked.parts]
    return AppriseChannel(
        name=name,
        urls=tuple(urls),
        message_success=channel.get("message_success"),
        message_failure=channel.get("message_failure"),
        summary=channel.get("summary", _default("$defs/apprise_channel/summary")),
        allow_plain_http=plain,
        secrets=tuple(dict.fromkeys(secrets)),
        **common,
    )


def _check_headers(check: _Checker, path: tuple, headers: Mapping[str, str]) -> None:
    """Headers the HTTP client can send: a token for a name, one line of ASCII for a value
    (which may be a secret, so it is never shown)."""
    for name, value in headers.items():
        if not _HEADER_NAME.fullmatch(name):
            check.add(
                path,
                f"{name!r} is no HTTP header name: use letters, digits and - (such as X-Api-Key)",
            )
        elif not value.isascii():
            check.add(
                (*path, name),
                (
                    "has a character that is not ASCII (not shown here); "
                    "an HTTP header carries ASCII only"
                ),
            )
        elif any(not (c == "\t" or " " <= c <= "~") for c in value):
            check.add(
                (*path, name),
                (
                    "has a line break or a control character (not shown here); "
                    "a header value is one line of text"
                ),
            )


def _check_target_keys(check: _Checker, where: tuple, raw: Mapping, channels: Mapping) -> None:
    """Check the keys a target shares with `defaults`, where the schema cannot."""
    if "timezone" in raw:
        check.zone((*where, "timezone"), raw["timezone"])
    cron = raw.get("schedule", {}).get("cron")
    if cron is not None:
        try:
            CronSim(cron, datetime(2000, 1, 1, tzinfo=timezone.utc))
        except CronSimError as error:
            check.add(
                (*where, "schedule", "cron"),
                f"{cron!r} is not a cron expression ({error}); e.g. '0 3 * * *' for 03:00 daily",
            )
    for section, key in (
        ("schedule", "every"),
        *(("retention", rule) for rule in RetentionPolicy.DURATION_RULES),
    ):
        text = raw.get(section, {}).get(key)
        if text is not None:
            try:
                Duration.parse(text)
            except ValueError as error:
                check.add((*where, section, key), str(error))
    for index, channel in enumerate(raw.get("notify", [])):
        if channel not in channels:
            check.add(
                (*where, "notify", index),
                (
                    f"no notification channel named {channel!r}; "
                    f"channels: {', '.join(channels) or 'none'}"
                ),
            )
    if "snapshot_name" in raw:
        for message in _name_pattern_errors(raw["snapshot_name"]):
            check.add((*where, "snapshot_name"), message)
    hooks = raw.get("hooks", {})
    for which in ("before", "after"):
        command = hooks.get(which)
        if isinstance(command, str) and not hooks.get("shell"):
            check.add(
                (*where, "hooks", which),
                (
                    "a string runs only through a shell: "
                    "write it as a list [program, argument, ...], or set shell: true"
                ),
            )
        elif isinstance(command, list) and hooks.get("shell"):
            check.add(
                (*where, "hooks", which),
                "with shell: true, write the command as one string for sh -c",
            )


def _check_drill(check: _Checker, where: tuple, raw: Mapping | None, account: Account) -> None:
    """A drill's duration, and the networks each cloud can give its server: DigitalOcean
    attaches no network but its region's default VPC; Hetzner refuses a server without a
    public network and without networks. Warnings, not errors: a drill that cannot be made
    fails on its own, and must not stop the snapshots."""
    if raw is None:
        return
    try:
        Duration.parse(raw["every"])
    except ValueError as error:
        check.add((*where, "every"), str(error))
    if account.provider == DIGITALOCEAN and raw.get("networks"):
        check.warn(
            (*where, "networks"),
            (
                "networks are Hetzner private networks: a DigitalOcean drill server is put in "
                "its region's default VPC, and these are ignored; leave networks out"
            ),
        )


def _check_overrides(
    check: _Checker, where: tuple, raw: Mapping, defaults: Mapping, account: Account
) -> None:
    """`autobackup` reads hcloud-snapshot-as-backup's labels, a Hetzner tool's: a DigitalOcean
    target has none to read (its tags cannot hold a `.`)."""
    if account.provider != DIGITALOCEAN:
        return
    mode = raw.get("server_overrides", defaults.get("server_overrides"))
    if mode == "autobackup":
        path = (*(where if "server_overrides" in raw else ("defaults",)), "server_overrides")
        check.add(
            path,
            (
                f"autobackup reads hcloud-snapshot-as-backup's Hetzner labels, and account "
                f"{account.name!r} is DigitalOcean's; use labels (the tags "
                "snapshot-policy:keep-last:14 and the like) or off"
            ),
        )


def _check_volumes(check: _Checker, where: tuple, raw: Mapping, account: Account) -> None:
    """`volumes: true` is DigitalOcean's (docs/promises.md §5.18)."""
    if raw.get("volumes") and account.provider != DIGITALOCEAN:
        check.add(
            (*where, "volumes"),
            (
                f"account {account.name!r} is {account.provider}, which has no volume "
                "snapshots (its API snapshots servers only); remove volumes, or snapshot the "
                "volume's data from a hook"
            ),
        )


def _check_verified(check: _Checker, where: tuple, raw: Mapping, target: TargetSpec) -> None:
    """keep_verified only adds to the other rules; it keeps nothing a drill has not passed."""
    retention = target.retention
    if not retention.keep_verified:
        return
    # a target's retention replaces that of defaults whole
    path = (*(where if "retention" in raw else ("defaults",)), "retention", "keep_verified")
    if not replace(retention, keep_verified=0).has_rules:
        check.add(
            path,
            (
                "keep_verified only adds to the other rules and deletes by none of its own: "
                "set at least one other rule above 0 too, e.g. keep_daily: 7"
            ),
        )
    elif target.drill is None:
        check.warn(
            path,
            (
                f"target {target.name!r} has no drill, so only drills recorded on its "
                "snapshots by another configuration can verify them; add drill: {every: 7d}"
            ),
        )


def _name_pattern_errors(pattern: str) -> list[str]:
    """Plain fields only: a format spec would make names that their own pattern does not match."""
    errors = template_errors(pattern, NAME_FIELDS, "field")
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError:
        return errors
    if "timestamp" not in fields:
        errors.append(
            "must contain {timestamp}, or every snapshot of a server would get the same name"
        )
    return errors


def _retention(raw: Mapping) -> RetentionPolicy:
    counts = {
        rule: raw.get(rule, _default("$defs/count"))
        for rule in (*RetentionPolicy.COUNTED_RULES, "keep_verified")
    }
    durations = {
        rule: Duration.parse(raw[rule])
        for rule in RetentionPolicy.DURATION_RULES
        if raw.get(rule) is not None
    }
    return RetentionPolicy(**counts, **durations)


def _target(
    raw: Mapping,
    defaults: Mapping,
    zone: str,
    account: Account,
    channels: Mapping,
    file: str,
    owner: str,
) -> TargetSpec:
    merged = {**defaults, **raw}
    schedule = merged.get("schedule", {})
    return TargetSpec(
        name=raw["name"],
        account=account,
        selector=Selector(
            ids=tuple(str(i) for i in raw.get("ids", ())),
            names=tuple(raw.get("names", ())),
            label_selector=raw.get("label_selector"),
        ),
        retention=_retention(merged.get("retention", {})),
        schedule=Schedule(
            every=Duration.parse(schedule["every"]) if "every" in schedule else None,
            cron=schedule.get("cron"),
        ),
        safety=Safety(
            max_deletions=merged.get("safety", {}).get(
                "max_deletions", _default("$defs/safety/max_deletions")
            )
        ),
        timezone=merged.get("timezone", zone),
        name_pattern=merged.get("snapshot_name", _default("$defs/snapshot_name")),
        adopt_legacy_names=merged.get("adopt_legacy_names", _default("$defs/adopt_legacy_names")),
        notify=tuple(channels[n] for n in merged.get("notify", ()) if n in channels),
        server_name=raw.get("server_name"),
        source=file,
        hooks=_hooks(merged.get("hooks")),
        owner=owner,
        drill=_drill(raw.get("drill")),
        # YAML reads an unquoted `off` as false
        server_overrides=merged.get("server_overrides", _default("$defs/server_overrides"))
        or "off",
        volumes=bool(raw.get("volumes", False)),
        copies=tuple(str(item["region"]) for item in raw.get("copies") or ()),
        consistency=_consistency(raw.get("consistency")),
    )


def _consistency(raw: str | Mapping | None) -> Consistency | None:
    """`consistency: shutdown` or its mapping form (docs/promises.md §5.17); a target's own."""
    if raw is None:
        return None
    if isinstance(raw, str):
        return Consistency(raw)
    return Consistency(
        raw["mode"],
        bool(raw.get("force", _default("$defs/consistency_settings/force"))),
        float(raw.get("timeout", _default("$defs/consistency_settings/timeout"))),
    )


def _check_copies(check: _Checker, where: tuple, raw: list | None, account: Account) -> None:
    """Copies in other regions are DigitalOcean's image transfers: Hetzner has no such API
    (docs/promises.md §5.15). Each region once."""
    if raw is None:
        return
    if account.provider != DIGITALOCEAN:
        check.add(
            where,
            (
                "Hetzner has no API to copy a snapshot to another location (its snapshots are "
                "global already); remove `copies` from this target"
            ),
        )
        return
    seen: set[str] = set()
    for index, item in enumerate(raw):
        region = str(item["region"])
        if region in seen:
            check.add(
                (*where, index, "region"),
                f"{region} is listed twice; list each region once",
            )
        seen.add(region)


def _drill(raw: Mapping | None) -> Drill | None:
    """The target's restore drill (never taken from defaults: each drill costs a server)."""
    if raw is None:
        return None

    def setting(key: str) -> Any:
        return raw.get(key, _default(f"$defs/drill/{key}"))

    return Drill(
        every=Duration.parse(raw["every"]),
        probe=tuple(raw["probe"]) if raw.get("probe") else None,
        probe_timeout=float(setting("probe_timeout")),
        boot_timeout=float(setting("boot_timeout")),
        public_network=bool(setting("public_network")),
        networks=tuple(str(n) for n in raw.get("networks", ())),
        machine_type=raw.get("machine_type"),
        env=tuple(raw.get("env", ())),
    )


def _hooks(raw: Mapping | None) -> Hooks | None:
    """The target's hooks (those of `defaults` unless it sets its own), or None without a
    command."""
    if not raw or not (raw.get("before") or raw.get("after")):
        return None

    def command(key: str) -> tuple[str, ...] | str | None:
        value = raw.get(key)
        return tuple(value) if isinstance(value, list) else value

    timeout = raw.get("timeout", _default("$defs/hooks/timeout"))
    shell = bool(raw.get("shell", _default("$defs/hooks/shell")))
    return Hooks(
        command("before"), command("after"), float(timeout), shell, tuple(raw.get("env", ()))
    )


def settings(
    raw: Mapping, base: Path, orphans: Mapping | None = None, owner: str = ""
) -> RunSettings:
    """Return the run settings of a policy's `settings` (and `orphans`) section; relative
    paths start at `base`. `owner` is the configuration's, whether `settings` names it or not."""
    log = raw.get("log", {})

    def local(value: str | None) -> str | None:
        return None if value is None else str(base / Path(value).expanduser())

    return RunSettings(
        lock_file=local(raw.get("lock_file", _default("settings/lock_file"))),
        log_file=local(log.get("file")),
        log_max_bytes=log.get("max_bytes", _default("settings/log/max_bytes")),
        log_backup_count=log.get("backup_count", _default("settings/log/backup_count")),
        log_level=log.get("level", _default("settings/log/level")),
        audit_log=local(raw.get("audit_log")),
        snapshot_creation_timeout=raw.get(
            "snapshot_creation_timeout", _default("settings/snapshot_creation_timeout")
        ),
        request_timeout=raw.get("request_timeout", _default("settings/request_timeout")),
        delay_between_servers=raw.get(
            "delay_between_servers", _default("settings/delay_between_servers")
        ),
        parallel=raw.get("parallel"),
        healthcheck_url=raw.get("healthcheck_url"),
        telegram_api_url=raw.get("telegram_api_url"),
        orphans_keep_last=(orphans or {}).get("keep_last"),
        owner=owner,
        max_deletions_per_run=raw.get("max_deletions_per_run"),
        uncovered_ignore=tuple(
            Selector(
                ids=tuple(str(i) for i in entry.get("ids", ())),
                names=tuple(entry.get("names", ())),
                label_selector=entry.get("label_selector"),
            )
            for entry in raw.get("uncovered", {}).get("ignore", ())
        ),
        drills_per_account=raw.get("drills_per_account", _default("settings/drills_per_account")),
        soft_delete=_soft_delete(raw.get("soft_delete")),
    )


def _soft_delete(text: str | None) -> Duration | None:
    """`settings.soft_delete` (issue 23, item 2); None when unset or unreadable (the checker
    has said why, and such a policy never runs)."""
    try:
        return None if text is None else Duration.parse(text)
    except ValueError:
        return None


def _check_soft_delete(check: _Checker, raw: Mapping) -> None:
    """A grace of a fixed length (hours, days, weeks): it is added to the run's clock to date
    the pending-delete mark (docs/promises.md §5.16)."""
    text = raw.get("soft_delete")
    if text is None:
        return
    try:
        Duration.parse(text).as_timedelta()
    except ValueError as error:
        check.add(("settings", "soft_delete"), f"{error}; e.g. soft_delete: 7d")


def prices(section: Mapping) -> dict[str, Price]:
    """Return what a GB of snapshots costs a month on each provider: the `prices` of a
    policy's `settings` section, key by key, else the schema's defaults (a legacy layout
    has none)."""
    raw = section.get("prices", {})
    return {
        provider: Price(
            per_gb_month=raw.get(provider, {}).get(
                "per_gb_month", _default(f"settings/prices/{provider}/per_gb_month")
            ),
            currency=raw.get(provider, {}).get(
                "currency", _default(f"settings/prices/{provider}/currency")
            ),
            # A price set in the settings wins over the price lists (core/pricing.py).
            source=pricing.SETTINGS if raw.get(provider) else pricing.DEFAULT_SOURCES[provider],
        )
        for provider in PROVIDERS
    }
