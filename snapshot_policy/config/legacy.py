"""snapshots.py's configuration, read unchanged: `snapshots.config` (INI) and per-server JSON,
normalised into the YAML policy's shape.

Every key and default of the legacy manual works (the defaults live in
`schemas/legacy-config.schema.json`). The files are checked as they are, so every problem
names the legacy file and key; then they become one document of the policy's shape — what
`migrate` prints — and `policy.build` makes the targets from it, as from a YAML policy.

- A target is a server file, named after it (`configs/web.json` is target `web`): a server
  name may repeat across files, as the same name on two clouds does.
- Notification settings follow the legacy priority, per key: the server's JSON file, then the
  INI's global section, then the default format. Servers whose merged settings are the same
  share one channel.
- Sample placeholders such as `your_telegram_bot_token_here` count as unset.
- Secrets stay what they were, never read as `env:` or `file:` (`LiteralSecret`).
- One broken server file is reported and counts as a failed target; the others still load.
- Server files given without `--config` take the snapshots.config of their folder, as
  snapshots.py always read the one beside it (`config_beside`).
- An unknown INI section is a warning, not an error: snapshots.py's configparser ignored it.
- Snapshots are named in the host's local time, as snapshots.py named them: the host's zone
  (`hostzone`, from the environment the caller hands in) is the document's `timezone`.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from snapshot_policy.config import policy
from snapshot_policy.config.hostzone import host_zone
from snapshot_policy.config.problems import ConfigError, Problem
from snapshot_policy.config.schemas import closest, coerce_ini, load_schema, validate
from snapshot_policy.config.secrets import LiteralSecret, SecretError, clean, is_placeholder
from snapshot_policy.config.sources import Source, read_ini, read_json
from snapshot_policy.core import transport
from snapshot_policy.core.model import Price, RunSettings, TargetFailure, TargetSpec
from snapshot_policy.core.templates import payload_strings, template_errors

LEGACY_CONFIG = "snapshots.config"
CONFIG_SCHEMA = "legacy-config.schema.json"
SERVER_SCHEMA = "legacy-server.schema.json"
WRAPPERS = {"digitalocean_droplet": "digitalocean", "hetzner_cloud_server": "hetzner"}


@dataclass
class LegacyLoad:
    """What the legacy files gave: targets, run settings, and every problem found.

    `document` is the policy-shaped document the valid files make (what `migrate` prints),
    its secrets LiteralSecrets.
    """

    settings: RunSettings
    targets: list[TargetSpec] = field(default_factory=list)
    failed: list[TargetFailure] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    server_files: list[str] = field(default_factory=list)
    """Files whose problems fail only their own target (server files, missing arguments)."""
    document: dict = field(default_factory=dict)
    prices: dict[str, Price] = field(default_factory=lambda: policy.prices({}))
    """The schema's default prices, as `policy.build` gives them: the legacy files name none."""


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
        """A template from the INI: `\\n` written in the file means a line break. None when the
        file leaves it out; "" when it sets it empty, for which snapshots.py sent its own
        FINAL_STATUS layout (`messages.telegram_text`)."""
        if self.empty(section, key):
            return ""
        value = self.get(section, key)
        return value.replace("\\n", "\n") if isinstance(value, str) and value else None

    def empty(self, section: str, key: str) -> bool:
        """True when the file sets `key` to nothing but blanks (`message_success =`)."""
        value = self._data.get(section, {}).get(key)
        return isinstance(value, str) and not value.strip()


def load_legacy(
    config_file: Path | None,
    server_args: Sequence[str],
    cwd: Path,
    home: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> LegacyLoad:
    """Load `config_file` (may be None: all defaults) and the server files it leads to.

    `server_args` are the positional file arguments: bare names are looked up in
    `configs_dir`; without any, every `*.json` there is read (`._*` files skipped). Without
    `config_file`, relative paths and the owner start at `home` (`Beside.home`), else `cwd`.
    `env` (default: this process's) gives the host's time zone, `TZ`, that snapshots are
    named in.
    """
    base = config_file.parent if config_file else (home or cwd)
    ini, problems, files = _read_ini(config_file)
    zone = host_zone(os.environ if env is None else env)
    if zone.warning is not None:
        # Loud: names in UTC where snapshots.py named them in local time surprise everyone.
        problems.append(Problem(zone.source, None, "", zone.warning, warning=True, loud=True))
    configs_dir = base / str(ini.get("DIRECTORIES", "configs_dir"))
    paths, missing = _server_paths(configs_dir, server_args, cwd)
    result = LegacyLoad(policy.settings({}, base), problems=problems + missing, files=files)
    result.failed += [TargetFailure(p.file, p.message) for p in missing]
    result.server_files += [p.file for p in missing]
    document = _Document(ini, policy.location_owner(base), zone.name)
    names = target_names(paths)
    seen: dict[tuple[str, int], Path] = {}
    for path in paths:
        result.files.append(str(path))
        result.server_files.append(str(path))
        server, file_problems = _server(path, ini, config_file)
        if server is not None and (server.provider, server.id) in seen:
            wrapper = next(w for w, p in WRAPPERS.items() if p == server.provider)
            other = seen[(server.provider, server.id)]
            file_problems.append(
                Problem(
                    str(path),
                    None,
                    f"{wrapper}.id",
                    f"server {server.id} is also configured in {other}; give each server one file",
                )
            )
        elif server is not None:
            seen[(server.provider, server.id)] = path
        result.problems += file_problems
        if server is None or any(not p.warning for p in file_problems):
            result.failed.append(TargetFailure(names[path], f"{path}: invalid configuration"))
        else:
            document.add_target(names[path], server)
    if not paths and not missing:
        result.problems.append(
            Problem(
                str(configs_dir),
                None,
                "",
                (
                    "no server files (*.json) found; "
                    "copy a sample from the legacy layout and fill it in"
                ),
            )
        )
    result.document = document.data()
    built = policy.build(Source(str(config_file or configs_dir), result.document), {}, base)
    # Every check a policy makes was made on the legacy files above, in their own words;
    # should one still fail here, it is said, never lost.
    result.problems += built.problems
    result.settings = built.settings
    result.prices = built.prices
    sources = {name: str(path) for path, name in names.items()}
    result.targets = [replace(spec, source=sources[spec.name]) for spec in built.targets]
    return result


class MixedFolders(Exception):
    """Server files given without `--config` belong to two snapshots.py folders."""


@dataclass(frozen=True)
class Beside:
    """The snapshots.config that server files given without `--config` belong to (None: the
    defaults), a note for the log saying which, and a warning where one seems missing."""

    config_file: Path | None
    note: str
    problems: tuple[Problem, ...] = ()
    home: Path | None = None
    """Without a snapshots.config: the folder the files belong to, where the defaults (logs/,
    the lock) and the owner start, as snapshots.py's did in its own folder; None: `cwd`."""


def config_beside(server_args: Sequence[str], cwd: Path) -> Beside:
    """Find the snapshots.config of the folder the server files belong to: the one beside
    them, or the one above them when they sit in its configs_dir; failing both, the one in
    `cwd`. snapshots.py read the snapshots.config beside itself and found bare names in its
    configs_dir, so `cd /opt/snapshots && … apply configs/web.json`, `… apply web.json` and
    `… apply /elsewhere/test.json` keep its settings, as they did (docs/promises.md §4.1).

    Raise MixedFolders if the files belong to two folders: one run has one lock and one log.
    """
    owners: dict[Path, tuple[Path, list[str]]] = {}
    folders: list[Path] = []
    for arg in server_args:
        path = _located(arg, cwd)
        if path is None:
            continue  # load_legacy says it is missing
        folder = path.parent
        folders.append(folder)
        found = _owning_config(folder) or _owning_config(_resolved(folder))
        if found is not None:
            owners.setdefault(_resolved(found), (found, []))[1].append(arg)
    if len(owners) > 1:
        which = "; ".join(f"{found} for {', '.join(args)}" for found, args in owners.values())
        raise MixedFolders(
            f"the server files belong to different snapshots.py folders ({which}): "
            "run each folder on its own, or name one with --config"
        )
    if owners:
        [(found, _)] = owners.values()
        return Beside(
            found,
            f"settings from {found}: server files given without --config take the "
            "snapshots.config of their folder, as snapshots.py did",
        )
    here = cwd / LEGACY_CONFIG
    if folders and here.is_file():
        return Beside(
            here,
            f"settings from {here} in the current folder: the server files' own folder has "
            "no snapshots.config, and snapshots.py run from here would have read this one",
        )
    home = _home(folders, cwd)
    note = (
        "no snapshots.config beside the server files, above their folder or in the current "
        "folder: the defaults "
        f"apply (logs/{'' if home is None else f' in {home}'}, no global notifications); "
        "give --config to name one"
    )
    looking = (_snapshots_py_folder(folder) for folder in dict.fromkeys(folders))
    problems = tuple(
        Problem(
            _shown(folder),
            None,
            "",
            (
                "looks like a snapshots.py folder, but no snapshots.config is in it, beside "
                "the server files or in the current folder, so the defaults apply (logs/, "
                "no global notifications); give --config FILE"
            ),
            # Not loud: the tool makes logs/ itself on its first run, and a warning printed
            # on every cron run of a valid layout would mail every hour.
            warning=True,
        )
        for folder in dict.fromkeys(f for f in looking if f is not None)
    )
    return Beside(None, note, problems, home)


def _home(folders: Sequence[Path], cwd: Path) -> Path | None:
    """The one folder the server files in `folders` belong to, when it is not `cwd`: each
    file's folder, or the one above it when that is its default configs_dir (as written, or
    with links resolved). snapshots.py kept logs/ and its lock in its own folder wherever
    cron started it, so two lines run from different folders share one lock and one owner.

    None (`cwd` stays the base) when the files belong to several folders, when `cwd` is that
    folder, or when `cwd` is the parent of a file's folder (`cd /opt/snapshots && … apply
    configs/web.json`, whose owner must not change).
    """
    name = str(IniSettings({}).get("DIRECTORIES", "configs_dir"))
    homes: dict[Path, Path] = {}
    for folder in folders:
        real = _resolved(folder)
        home = (
            _above(folder) if folder.name == name else real.parent if real.name == name else folder
        )
        homes.setdefault(_resolved(home), home)
    if len(homes) != 1:
        return None
    [(real_home, home)] = homes.items()
    here = _resolved(cwd)
    if here == real_home or any(here == _resolved(f).parent for f in folders):
        return None
    return home


def _located(arg: str, cwd: Path) -> Path | None:
    """The file a server argument names, found as load_legacy will find it."""
    if "/" in arg:
        path = cwd / arg
        return path if path.is_file() else None
    configs_dir = cwd / _configs_dir_name(cwd)
    return next(
        (c for c in (configs_dir / arg, configs_dir / f"{arg}.json", cwd / arg) if c.is_file()),
        None,
    )


def _owning_config(folder: Path) -> Path | None:
    """`folder`'s snapshots.config, or its parent's when `folder` is that one's configs_dir.
    Called again with links resolved: `~/cfg -> /opt/snapshots/configs` belongs there."""
    own = folder / LEGACY_CONFIG
    if own.is_file():
        return own
    parent = _above(folder)
    above = parent / LEGACY_CONFIG
    if above.is_file() and _resolved(parent / _configs_dir_name(parent)) == _resolved(folder):
        return above
    return None


def _configs_dir_name(folder: Path) -> str:
    """The configs_dir that `folder`'s snapshots.config names; the default if it names none or
    cannot be read (loading it later says why)."""
    default = str(IniSettings({}).get("DIRECTORIES", "configs_dir"))
    config_file = folder / LEGACY_CONFIG
    if not config_file.is_file():
        return default
    try:
        value = read_ini(config_file).data.get("DIRECTORIES", {}).get("configs_dir")
    except ConfigError:
        return default
    return value.strip() if isinstance(value, str) and value.strip() else default


def _above(folder: Path) -> Path:
    """The folder above `folder`, kept relative where it was (`.` is above `configs`)."""
    return Path(os.path.normpath(folder / os.pardir))


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:  # a loop of links: compare as written
        return path


def _snapshots_py_folder(folder: Path) -> Path | None:
    """`folder`, or the one above it, if it has what a snapshots.py folder has."""
    for candidate in (folder, _above(folder)):
        if (candidate / "logs").is_dir() or (candidate / "snapshots.py").is_file():
            return candidate
    return None


def _shown(folder: Path) -> str:
    """A folder as a message names it: `.` and `..` say little, so those in full."""
    return str(_resolved(folder)) if folder.name in ("", "..") else str(folder)


def target_names(paths: Sequence[Path]) -> dict[Path, str]:
    """Name each server file's target after the file, without `.json`: `configs/web.json` is
    `web`. Files of one name in different folders (given as arguments) keep their paths."""
    stems = Counter(path.stem for path in paths)
    return {path: path.stem if stems[path.stem] == 1 else str(path) for path in paths}


def _read_ini(config_file: Path | None) -> tuple[IniSettings, list[Problem], list[str]]:
    if config_file is None:
        return IniSettings({}), [], []
    try:
        source = read_ini(config_file)
    except ConfigError as error:
        return IniSettings({}), list(error.problems), [str(config_file)]
    schema = load_schema(CONFIG_SCHEMA)
    known = {k: v for k, v in source.data.items() if k in schema["properties"]}
    data = coerce_ini(known, schema)
    problems = _unknown_sections(source, schema["properties"]) + validate(
        data, CONFIG_SCHEMA, source
    )
    for key in ("payload_success", "payload_failure"):
        text = data.get("WEBHOOK", {}).get(key)
        if isinstance(text, str) and text.strip() and not is_placeholder(text):
            problems += _ini_payload_problems(source, key, text)
    problems += _token_problems(
        source,
        data.get("TELEGRAM", {}).get("bot_token"),
        ("TELEGRAM", "bot_token"),
        "TELEGRAM.bot_token",
    )
    for section, key in (("TELEGRAM", "message_success"), ("TELEGRAM", "message_failure")):
        text = data.get(section, {}).get(key)
        if isinstance(text, str):
            problems += [
                _problem(source, (section, key), f"{section}.{key}", m)
                for m in template_errors(text)
            ]
    if any(not p.warning for p in problems):
        data = {}  # an invalid INI must not half-apply: the CLI stops on its errors
    return IniSettings(data), problems, [str(config_file)]


def _unknown_sections(source: Source, sections: Mapping) -> list[Problem]:
    """A loud warning for each section the INI's schema does not know: snapshots.py's
    configparser ignored such a section, so a folder that ran with one keeps running."""
    problems = []
    for section in source.data:
        if section in sections:
            continue
        close = closest(section, sections)
        guess = f" (did you mean [{close}]?)" if close else ""
        problems.append(
            Problem(
                source.file,
                source.line_of((section,)),
                section,
                f"unknown section [{section}]{guess}; its keys are ignored, as snapshots.py "
                "ignored them",
                warning=True,
                loud=True,
            )
        )
    return problems


def _ini_payload_problems(source: Source, key: str, text: str) -> list[Problem]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as error:
        return [
            _problem(
                source,
                ("WEBHOOK", key),
                f"WEBHOOK.{key}",
                (
                    f"is not valid JSON ({error.msg} at column {error.colno}); "
                    "write the payload as one JSON object"
                ),
            )
        ]
    if not isinstance(payload, dict):
        return [
            _problem(
                source,
                ("WEBHOOK", key),
                f"WEBHOOK.{key}",
                'must be a JSON object such as {"server": "{server_name}"}',
            )
        ]
    return [
        _problem(source, ("WEBHOOK", key), f"WEBHOOK.{key}", m)
        for _, text in payload_strings(payload)
        for m in template_errors(text)
    ]


def _server_paths(
    configs_dir: Path, args: Sequence[str], cwd: Path
) -> tuple[list[Path], list[Problem]]:
    """Return the server files to read, and a problem for each argument that names none."""
    if not args:
        if not configs_dir.is_dir():
            return [], []
        return sorted(p for p in configs_dir.glob("*.json") if not p.name.startswith("._")), []
    found, missing = [], []
    for arg in args:
        bare = "/" not in arg
        candidates = (
            [configs_dir / arg, configs_dir / f"{arg}.json", cwd / arg] if bare else [cwd / arg]
        )
        path = next((c for c in candidates if c.is_file()), None)
        if path is None:
            where = f"{configs_dir} or {cwd}" if bare else str(cwd / arg)
            missing.append(Problem(arg, None, "", f"no such server file in {where}"))
        elif not any(
            path.resolve() == seen.resolve() for seen in found
        ):  # one file named twice is one server
            found.append(path)
    return found, missing


@dataclass(frozen=True)
class _Server:
    """One valid server file, its notification settings merged with the INI's."""

    provider: str
    id: int
    name: str
    token: LiteralSecret
    retain_last_snapshots: int
    channels: tuple[dict, ...]


def _server(
    path: Path, ini: IniSettings, config_file: Path | None
) -> tuple[_Server | None, list[Problem]]:
    """Return what one server file describes, or None and why not."""
    try:
        source = read_json(path)
    except ConfigError as error:
        return None, list(error.problems)
    problems = validate(source.data, SERVER_SCHEMA, source)
    if any(not p.warning for p in problems):
        return None, problems
    wrapper, server = next(iter(source.data.items()))
    if is_placeholder(server["api_token"]):
        problems.append(
            _problem(
                source,
                (wrapper, "api_token"),
                f"{wrapper}.api_token",
                "is still the sample's placeholder; put this server's API token here",
            )
        )
        return None, problems
    problems += _token_problems(
        source, server["api_token"], (wrapper, "api_token"), f"{wrapper}.api_token"
    )
    channels, channel_problems = _channels(source, wrapper, server, ini, config_file)
    problems += channel_problems
    token = LiteralSecret(
        server["api_token"].strip(), f"the api_token of {path}"
    )  # a token pasted with its line break still works
    return _Server(
        WRAPPERS[wrapper],
        int(server["id"]),
        server["name"],
        token,
        server["retain_last_snapshots"],
        channels,
    ), problems


def _channels(
    source: Source, wrapper: str, server: Mapping, ini: IniSettings, config_file: Path | None
) -> tuple[tuple[dict, ...], list[Problem]]:
    """Merge per-server and global notification settings, key by key, into channels of the
    policy's shape."""
    problems: list[Problem] = []
    telegram = _own(server.get("telegram"))
    webhook = _own(server.get("webhook"))
    for section, own in (("telegram", telegram), ("webhook", webhook)):
        for key in ("message_success", "message_failure", "payload_success", "payload_failure"):
            for subpath, text in payload_strings(own.get(key)):
                path = (wrapper, section, key, *subpath)
                problems += [
                    _problem(source, path, ".".join(map(str, path)), m)
                    for m in template_errors(text)
                ]
    channels: list[dict] = []
    if _enabled(telegram, ini, "TELEGRAM"):
        problems += _token_problems(
            source,
            telegram.get("bot_token"),
            (wrapper, "telegram", "bot_token"),
            f"{wrapper}.telegram.bot_token",
        )
        own = {k: telegram[k] for k in ("bot_token", "chat_id") if telegram.get(k)}
        if telegram.get("enabled") is True and len(own) < 2:
            # snapshots.py: a file that enables Telegram without both takes both from
            # snapshots.config, or sends nothing; one left unset in the file takes that one.
            own = {}
        if own.get("bot_token"):
            token = LiteralSecret(
                str(own["bot_token"]).strip(), f"the telegram.bot_token of {source.file}"
            )
        else:
            value = ini.get("TELEGRAM", "bot_token")
            token = (
                LiteralSecret(str(value).strip(), f"the bot_token in [TELEGRAM] of {config_file}")
                if value
                else None
            )
        chat = own.get("chat_id") or ini.get("TELEGRAM", "chat_id")
        if token and chat:
            channels.append(
                _settled(
                    {
                        "type": "telegram",
                        "style": "snapshots.py",  # its texts, byte for byte
                        "bot_token": token,
                        "chat_id": str(chat),
                        "message_success": telegram.get("message_success")
                        or ini.text("TELEGRAM", "message_success"),
                        "message_failure": telegram.get("message_failure")
                        or ini.text("TELEGRAM", "message_failure"),
                        **_retry_settings(ini, "TELEGRAM"),
                    }
                )
            )
        else:
            problems.append(
                Problem(
                    source.file,
                    None,
                    f"{wrapper}.telegram",
                    (
                        "Telegram is enabled but has no bot_token and chat_id "
                        f"here or in {_config_named(config_file)}; no message will be sent"
                    ),
                    warning=True,
                )
            )
    if _enabled(webhook, ini, "WEBHOOK"):
        url = webhook.get("url") or ini.get("WEBHOOK", "url")
        # snapshots.py posted to any http URL (an n8n on the LAN): sent too, said aloud
        plain = bool(url) and transport.is_plain_http_elsewhere(str(url))
        if plain:
            problems.append(_plain_http_warning(source, wrapper, str(url)))
        refused = transport.url_problem(str(url), transport.WEBHOOK, plain) if url else None
        if refused is not None:  # the server's snapshots matter more than its notification
            problems.append(
                Problem(
                    source.file,
                    None,
                    f"{wrapper}.webhook.url",
                    f"{refused}; the webhook will not be sent",
                    warning=True,
                )
            )
        elif url:
            channels.append(
                _settled(
                    {
                        "type": "webhook",
                        "style": "snapshots.py",
                        "url": str(url),
                        **({"allow_plain_http": True} if plain else {}),
                        "payload_success": webhook.get("payload_success")
                        or _ini_payload(ini, "payload_success"),
                        "payload_failure": webhook.get("payload_failure")
                        or _ini_payload(ini, "payload_failure"),
                        **_retry_settings(ini, "WEBHOOK"),
                    }
                )
            )
        else:
            problems.append(
                Problem(
                    source.file,
                    None,
                    f"{wrapper}.webhook",
                    (
                        f"the webhook is enabled but has no url here or in "
                        f"{_config_named(config_file)}; nothing will be sent"
                    ),
                    warning=True,
                )
            )
    return tuple(channels), problems


def _plain_http_warning(source: Source, wrapper: str, url: str) -> Problem:
    """The loud warning for a webhook sent over plain http to another host, showing the URL's
    scheme, host and port only: its path can be the secret (issue 21, item 2)."""
    return Problem(
        source.file,
        None,
        f"{wrapper}.webhook.url",
        (
            f"{transport.shown(url)}/… is plain http: the webhook's URL and body cross the "
            "network in clear text; it is sent as snapshots.py sent it; use https to protect it"
        ),
        warning=True,
        loud=True,
    )


def _config_named(config_file: Path | None) -> str:
    return str(config_file) if config_file else "a snapshots.config (none was read)"


def _retry_settings(ini: IniSettings, section: str) -> dict:
    return {
        key: ini.get(section, key) for key in ("timeout", "retries", "base_delay_between_retries")
    }


def _settled(channel: dict) -> dict:
    """The channel without the keys no setting filled: those take the default format."""
    return {key: value for key, value in channel.items() if value is not None}


class _Document:
    """The policy-shaped document the valid legacy files make, built one server at a time:
    one account per provider and token, one channel per distinct set of settings."""

    def __init__(self, ini: IniSettings, owner: str, zone: str):
        self.ini = ini
        self.owner = owner
        self.zone = zone
        self.accounts: dict[str, dict] = {}
        self.notifications: dict[str, dict] = {}
        self.targets: list[dict] = []

    def add_target(self, name: str, server: _Server) -> None:
        notify = [self._channel(channel) for channel in server.channels]
        self.targets.append(
            {
                "name": name,
                "account": self._account(server.provider, server.token),
                "ids": [server.id],
                # snapshots.py named snapshots and spoke of the server by the name in its file.
                "server_name": server.name,
                # It kept N old snapshots and then added one; 0 kept only the new one.
                "retention": {"keep_last": max(1, server.retain_last_snapshots)},
                "adopt_legacy_names": True,
                # snapshots.py read no label of a server, and neither does its layout (item 4)
                "server_overrides": "off",
                **({"notify": notify} if notify else {}),
            }
        )

    def _account(self, provider: str, token: LiteralSecret) -> str:
        for name, account in self.accounts.items():
            if account == {"provider": provider, "token": token}:
                return name
        name = f"{provider}-{sum(a['provider'] == provider for a in self.accounts.values()) + 1}"
        self.accounts[name] = {"provider": provider, "token": token}
        return name

    def _channel(self, channel: dict) -> str:
        for name, known in self.notifications.items():
            if known == channel:
                return name
        kind = channel["type"]
        count = sum(c["type"] == kind for c in self.notifications.values())
        name = kind if not count else f"{kind}-{count + 1}"
        self.notifications[name] = channel
        return name

    def data(self) -> dict:
        ini = self.ini
        logs_dir = Path(str(ini.get("DIRECTORIES", "logs_dir")))
        return {
            "version": 1,
            # snapshots.py named snapshots in the host's local time; written out, so the policy
            # `migrate` prints names them alike on this host and any other.
            "timezone": self.zone,
            "accounts": self.accounts,
            **({"notifications": self.notifications} if self.notifications else {}),
            "targets": self.targets,
            "settings": {
                # Written out, so the policy `migrate` prints stays the configuration that
                # made the snapshots, wherever it is saved.
                "owner": self.owner,
                "lock_file": str(logs_dir / str(ini.get("FILES", "lock_file"))),
                "log": {
                    "file": str(logs_dir / str(ini.get("FILES", "log_file"))),
                    "max_bytes": ini.get("LOGGING", "max_bytes"),
                    "backup_count": ini.get("LOGGING", "backup_count"),
                    "level": str(ini.get("LOGGING", "level")).upper(),
                },
                "snapshot_creation_timeout": ini.get("TIMING", "snapshot_creation_timeout"),
                "delay_between_servers": ini.get("TIMING", "delay_between_servers"),
            },
        }


def _own(section: object) -> dict:
    """A server's notification section with placeholder values dropped."""
    if not isinstance(section, dict):
        return {}
    return {k: v for k, v in section.items() if not is_placeholder(v)}


def _enabled(own: Mapping, ini: IniSettings, section: str) -> bool:
    return bool(own["enabled"]) if "enabled" in own else bool(ini.get(section, "enabled"))


def _ini_payload(ini: IniSettings, key: str) -> dict | None:
    """The INI's payload template; None when left out; `{}` when set empty, for which
    snapshots.py sent its own body, `total_snapshots` a number (`messages.webhook_payload`)."""
    if ini.empty("WEBHOOK", key):
        return {}
    text = ini.get("WEBHOOK", key)
    return json.loads(text) if isinstance(text, str) and text.strip() else None


def _token_problems(source: Source, value: object, path: tuple, shown: str) -> list[Problem]:
    """A problem if the token `value` (a string, not a placeholder) has whitespace, a control
    character or a character that is not ASCII inside it (it is sent in an HTTP header or
    URL); the message names the key, never the value."""
    if not isinstance(value, str) or is_placeholder(value):
        return []
    try:
        clean(value, ascii_only=True)
    except SecretError as error:
        return [_problem(source, path, shown, str(error))]
    return []


def _problem(source: Source, path: tuple, shown: str, message: str) -> Problem:
    return Problem(source.file, source.line_of(path), shown, message)
