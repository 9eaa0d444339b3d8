"""snapshots.py's configuration, read unchanged: `snapshots.config` (INI) and per-server JSON.

Every key and default of the legacy manual works (the defaults live in
`schemas/legacy-config.schema.json`). Notification settings follow its priority, per key:
the server's JSON file, then the INI's global section, then the default format. Sample
placeholders such as `your_telegram_bot_token_here` count as unset. One broken server file
is reported and counts as a failed target; the others still load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from snapshot_policy import transport
from snapshot_policy.config.problems import ConfigError, Problem
from snapshot_policy.config.schemas import coerce_ini, load_schema, validate
from snapshot_policy.config.secrets import SecretError, clean, is_placeholder
from snapshot_policy.config.sources import Source, read_ini, read_json
from snapshot_policy.model import (
    Account,
    RetentionPolicy,
    RunSettings,
    Selector,
    TargetFailure,
    TargetSpec,
    TelegramChannel,
    WebhookChannel,
)
from snapshot_policy.templates import payload_strings, template_errors

CONFIG_SCHEMA = "legacy-config.schema.json"
SERVER_SCHEMA = "legacy-server.schema.json"
WRAPPERS = {"digitalocean_droplet": "digitalocean", "hetzner_cloud_server": "hetzner"}


@dataclass
class LegacyLoad:
    """What the legacy files gave: targets, run settings, and every problem found."""

    settings: RunSettings
    targets: list[TargetSpec] = field(default_factory=list)
    failed: list[TargetFailure] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    server_files: list[str] = field(default_factory=list)
    """Files whose problems fail only their own target (server files, missing arguments)."""


class IniSettings:
    """The INI's values, with the schema's defaults for whatever the file leaves out."""

    def __init__(self, data: Mapping[str, Mapping[str, object]]):
        self._data = data
        self._schema = load_schema(CONFIG_SCHEMA)["properties"]

    def get(self, section: str, key: str) -> object:
        value = self._data.get(section, {}).get(key)
        if value is None or is_placeholder(value):
            return self._schema[section]["properties"][key].get("default")
        return value

    def text(self, section: str, key: str) -> str | None:
        """A template from the INI: `\\n` written in the file means a line break."""
        value = self.get(section, key)
        return value.replace("\\n", "\n") if isinstance(value, str) and value else None


def load_legacy(config_file: Path | None, server_args: Sequence[str], cwd: Path) -> LegacyLoad:
    """Load `config_file` (may be None: all defaults) and the server files it leads to.

    `server_args` are the positional file arguments: bare names are looked up in
    `configs_dir`; without any, every `*.json` there is read (`._*` files skipped).
    """
    base = config_file.parent if config_file else cwd
    ini, problems, files = _read_ini(config_file)
    settings = _settings(ini, base)
    result = LegacyLoad(settings, problems=problems, files=files)
    configs_dir = base / str(ini.get("DIRECTORIES", "configs_dir"))
    paths, missing = _server_paths(configs_dir, server_args, cwd)
    result.problems += missing
    result.failed += [TargetFailure(p.file, p.message) for p in missing]
    result.server_files += [p.file for p in missing]
    accounts: dict[tuple[str, str], Account] = {}
    names: dict[str, str] = {}
    for path in paths:
        result.files.append(str(path))
        result.server_files.append(str(path))
        spec, file_problems = _server(path, ini, accounts)
        if spec is not None and spec.name in names:
            file_problems.append(Problem(str(path), None, "name", f"server name {spec.name!r} is also configured in {names[spec.name]}; give each server one file"))
        result.problems += file_problems
        if spec is None or any(not p.warning for p in file_problems):
            result.failed.append(TargetFailure(spec.name if spec else path.name, f"{path}: invalid configuration"))
        else:
            names[spec.name] = str(path)
            result.targets.append(spec)
    if not paths and not missing:
        result.problems.append(Problem(str(configs_dir), None, "", "no server files (*.json) found; copy a sample from the legacy layout and fill it in"))
    return result


def _read_ini(config_file: Path | None) -> tuple[IniSettings, list[Problem], list[str]]:
    if config_file is None:
        return IniSettings({}), [], []
    try:
        source = read_ini(config_file)
    except ConfigError as error:
        return IniSettings({}), list(error.problems), [str(config_file)]
    data = coerce_ini(source.data, load_schema(CONFIG_SCHEMA))
    problems = validate(data, CONFIG_SCHEMA, source)
    for key in ("payload_success", "payload_failure"):
        text = data.get("WEBHOOK", {}).get(key)
        if isinstance(text, str) and text.strip() and not is_placeholder(text):
            problems += _ini_payload_problems(source, key, text)
    problems += _secret_problems(source, data.get("TELEGRAM", {}).get("bot_token"), ("TELEGRAM", "bot_token"), "TELEGRAM.bot_token")
    for section, key in (("TELEGRAM", "message_success"), ("TELEGRAM", "message_failure")):
        text = data.get(section, {}).get(key)
        if isinstance(text, str):
            problems += [_problem(source, (section, key), f"{section}.{key}", m) for m in template_errors(text)]
    if any(not p.warning for p in problems):
        data = {}  # an invalid INI must not half-apply: the CLI stops on its errors
    return IniSettings(data), problems, [str(config_file)]


def _ini_payload_problems(source: Source, key: str, text: str) -> list[Problem]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        return [_problem(source, ("WEBHOOK", key), f"WEBHOOK.{key}", f"is not valid JSON ({error.msg} at column {error.colno}); write the payload as one JSON object")]
    if not isinstance(payload, dict):
        return [_problem(source, ("WEBHOOK", key), f"WEBHOOK.{key}", "must be a JSON object such as {\"server\": \"{server_name}\"}")]
    return [_problem(source, ("WEBHOOK", key), f"WEBHOOK.{key}", m) for _, text in payload_strings(payload) for m in template_errors(text)]


def _settings(ini: IniSettings, base: Path) -> RunSettings:
    logs_dir = base / str(ini.get("DIRECTORIES", "logs_dir"))
    return RunSettings(
        lock_file=str(logs_dir / str(ini.get("FILES", "lock_file"))),
        log_file=str(logs_dir / str(ini.get("FILES", "log_file"))),
        log_max_bytes=int(ini.get("LOGGING", "max_bytes")),
        log_backup_count=int(ini.get("LOGGING", "backup_count")),
        log_level=str(ini.get("LOGGING", "level")).upper(),
        snapshot_creation_timeout=int(ini.get("TIMING", "snapshot_creation_timeout")),
        delay_between_servers=float(ini.get("TIMING", "delay_between_servers")),
    )


def _server_paths(configs_dir: Path, args: Sequence[str], cwd: Path) -> tuple[list[Path], list[Problem]]:
    """Return the server files to read, and a problem for each argument that names none."""
    if not args:
        if not configs_dir.is_dir():
            return [], []
        return sorted(p for p in configs_dir.glob("*.json") if not p.name.startswith("._")), []
    found, missing = [], []
    for arg in args:
        bare = "/" not in arg
        candidates = [configs_dir / arg, configs_dir / f"{arg}.json", cwd / arg] if bare else [cwd / arg]
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            where = f"{configs_dir} or {cwd}" if bare else str(cwd / arg)
            missing.append(Problem(arg, None, "", f"no such server file in {where}"))
        else:
            found.append(path)
    return found, missing


def _server(path: Path, ini: IniSettings, accounts: dict[tuple[str, str], Account]) -> tuple[TargetSpec | None, list[Problem]]:
    """Return the target one server file describes, or None and why not."""
    try:
        source = read_json(path)
    except ConfigError as error:
        return None, list(error.problems)
    problems = validate(source.data, SERVER_SCHEMA, source)
    if any(not p.warning for p in problems):
        return None, problems
    wrapper, server = next(iter(source.data.items()))
    provider = WRAPPERS[wrapper]
    if is_placeholder(server["api_token"]):
        problems.append(_problem(source, (wrapper, "api_token"), f"{wrapper}.api_token", "is still the sample's placeholder; put this server's API token here"))
        return None, problems
    problems += _secret_problems(source, server["api_token"], (wrapper, "api_token"), f"{wrapper}.api_token")
    channels, channel_problems = _channels(source, wrapper, server, ini)
    problems += channel_problems
    api_token = server["api_token"].strip()  # a token pasted with its line break still works
    key = (provider, api_token)
    account = accounts.setdefault(key, Account(f"{provider}-{sum(k[0] == provider for k in accounts) + 1}", provider, api_token))
    spec = TargetSpec(
        name=server["name"],
        account=account,
        selector=Selector(ids=(str(server["id"]),)),
        # snapshots.py kept N old snapshots and then added one; 0 kept only the new one.
        retention=RetentionPolicy(keep_last=max(1, server["retain_last_snapshots"])),
        adopt_legacy_names=True,
        notify=channels,
        server_name=server["name"],
        source=str(path),
    )
    return spec, problems


def _channels(source: Source, wrapper: str, server: Mapping, ini: IniSettings) -> tuple[tuple, list[Problem]]:
    """Merge per-server and global notification settings, key by key."""
    problems: list[Problem] = []
    telegram = _own(server.get("telegram"))
    webhook = _own(server.get("webhook"))
    for section, own in (("telegram", telegram), ("webhook", webhook)):
        for key in ("message_success", "message_failure", "payload_success", "payload_failure"):
            for subpath, text in payload_strings(own.get(key)):
                path = (wrapper, section, key, *subpath)
                problems += [_problem(source, path, ".".join(map(str, path)), m) for m in template_errors(text)]
    channels: list = []
    if _enabled(telegram, ini, "TELEGRAM"):
        token = telegram.get("bot_token") or ini.get("TELEGRAM", "bot_token")
        problems += _secret_problems(source, telegram.get("bot_token"), (wrapper, "telegram", "bot_token"), f"{wrapper}.telegram.bot_token")
        chat = telegram.get("chat_id") or ini.get("TELEGRAM", "chat_id")
        if token and chat:
            channels.append(TelegramChannel(
                name="telegram",
                bot_token=str(token).strip(),
                chat_id=str(chat),
                message_success=telegram.get("message_success") or ini.text("TELEGRAM", "message_success"),
                message_failure=telegram.get("message_failure") or ini.text("TELEGRAM", "message_failure"),
                timeout=float(ini.get("TELEGRAM", "timeout")),
                retries=int(ini.get("TELEGRAM", "retries")),
                base_delay=float(ini.get("TELEGRAM", "base_delay_between_retries")),
            ))
        else:
            problems.append(Problem(source.file, None, f"{wrapper}.telegram", "Telegram is enabled but has no bot_token and chat_id here or in snapshots.config; no message will be sent", warning=True))
    if _enabled(webhook, ini, "WEBHOOK"):
        url = webhook.get("url") or ini.get("WEBHOOK", "url")
        refused = transport.url_problem(str(url), transport.WEBHOOK) if url else None
        if refused is not None:  # the server's snapshots matter more than its notification
            problems.append(Problem(source.file, None, f"{wrapper}.webhook.url", f"{refused}; the webhook will not be sent", warning=True))
        if url:
            channels.append(WebhookChannel(
                name="webhook",
                url=str(url),
                payload_success=webhook.get("payload_success") or _ini_payload(ini, "payload_success"),
                payload_failure=webhook.get("payload_failure") or _ini_payload(ini, "payload_failure"),
                timeout=float(ini.get("WEBHOOK", "timeout")),
                retries=int(ini.get("WEBHOOK", "retries")),
                base_delay=float(ini.get("WEBHOOK", "base_delay_between_retries")),
            ))
        else:
            problems.append(Problem(source.file, None, f"{wrapper}.webhook", "the webhook is enabled but has no url here or in snapshots.config; nothing will be sent", warning=True))
    return tuple(channels), problems


def _own(section: object) -> dict:
    """A server's notification section with placeholder values dropped."""
    if not isinstance(section, dict):
        return {}
    return {k: v for k, v in section.items() if not is_placeholder(v)}


def _enabled(own: Mapping, ini: IniSettings, section: str) -> bool:
    return bool(own["enabled"]) if "enabled" in own else bool(ini.get(section, "enabled"))


def _ini_payload(ini: IniSettings, key: str) -> dict | None:
    text = ini.get("WEBHOOK", key)
    return json.loads(text) if isinstance(text, str) and text.strip() else None


def _secret_problems(source: Source, value: object, path: tuple, shown: str) -> list[Problem]:
    """A problem if the secret `value` (a string, not a placeholder) has whitespace or a control
    character inside it; the message names the key, never the value."""
    if not isinstance(value, str) or is_placeholder(value):
        return []
    try:
        clean(value)
    except SecretError as error:
        return [_problem(source, path, shown, str(error))]
    return []


def _problem(source: Source, path: tuple, shown: str, message: str) -> Problem:
    return Problem(source.file, source.line_of(path), shown, message)
