"""Turning a legacy layout into an equivalent YAML policy (SPEC §3 `migrate`).

Equivalent means: the migrated policy plans exactly as the legacy files do — same accounts,
targets, snapshot names, retention, adoption of snapshots.py's snapshots and notifications.
Secrets never reach the output: each becomes an `env:` reference, and `exports` says which
variable to set from which file's key (never the value).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

import yaml

from snapshot_policy.model import DIGITALOCEAN, RunSettings, TargetSpec, TelegramChannel, WebhookChannel

TOKEN_VARIABLES = {DIGITALOCEAN: "DIGITALOCEAN_TOKEN", "hetzner": "HCLOUD_TOKEN"}
HEADER = """\
# snapshot-policy policy, migrated from a snapshots.py layout by `snapshot-policy migrate`.
# Save it beside snapshots.config (paths below are relative to it) and export the
# variables `migrate` listed. Snapshot names keep the form snapshots.py used, and its
# snapshots are adopted (adopt_legacy_names), so retention counts them as before.
"""


@dataclass(frozen=True)
class Migration:
    text: str
    exports: tuple[str, ...]
    """One line per variable to export: its name and where its value is found."""


def migrate(targets: Iterable[TargetSpec], settings: RunSettings, base: str) -> Migration:
    """Return the YAML policy equivalent to the legacy `targets` and `settings`."""
    targets = list(targets)
    exports: dict[str, str] = {}
    accounts, account_names = {}, {}
    for spec in targets:
        account = spec.account
        if account.name not in accounts:
            variable = f"{TOKEN_VARIABLES[account.provider]}_{account.name.rsplit('-', 1)[-1]}"
            exports[variable] = f"the api_token of {spec.source}"
            accounts[account.name] = {"provider": account.provider, "token": f"env:{variable}"}
        account_names[spec.name] = account.name
    channels, channel_of = _channels(targets, exports)
    document = {
        "version": 1,
        "accounts": accounts,
        **({"notifications": channels} if channels else {}),
        "targets": [_target(spec, channel_of) for spec in targets],
        "settings": _settings(settings, base),
    }
    body = yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
    return Migration(HEADER + body, tuple(f"export {name}=...  # {where}" for name, where in exports.items()))


def _channels(targets: list[TargetSpec], exports: dict[str, str]) -> tuple[dict, dict]:
    """Share one YAML channel among the servers whose merged settings are the same."""
    channels: dict[str, dict] = {}
    channel_of: dict[tuple[str, int], str] = {}
    for spec in targets:
        for index, channel in enumerate(spec.notify):
            document = _channel(channel)
            name = next((n for n, d in channels.items() if d == document), None)
            if name is None:
                name = channel.name if channel.name not in channels else f"{channel.name}-{len(channels) + 1}"
                channels[name] = document
            channel_of[(spec.name, index)] = name
    for name, document in channels.items():
        for key in ("bot_token", "secret"):
            if key in document:
                variable = f"{name.upper().replace('-', '_')}_{key.upper()}"
                source = next(s.source for s in targets for i, _ in enumerate(s.notify) if channel_of[(s.name, i)] == name)
                exports[variable] = f"the {key} in effect for {source} (its telegram section, else snapshots.config [TELEGRAM])"
                document[key] = f"env:{variable}"
    return channels, channel_of


def _channel(channel: TelegramChannel | WebhookChannel) -> dict:
    if isinstance(channel, TelegramChannel):
        document = {"type": "telegram", "bot_token": channel.bot_token, "chat_id": channel.chat_id}
        extra = {"message_success": channel.message_success, "message_failure": channel.message_failure}
    else:
        document = {"type": "webhook", "url": channel.url}
        extra = {"payload_success": channel.payload_success, "payload_failure": channel.payload_failure}
    document.update({k: v for k, v in extra.items() if v})
    document.update(timeout=channel.timeout, retries=channel.retries, base_delay_between_retries=channel.base_delay)
    return document


def _target(spec: TargetSpec, channel_of: dict) -> dict:
    # snapshots.py named snapshots after the name in the JSON file, not the server's own.
    literal = (spec.server_name or spec.name).replace("{", "{{").replace("}", "}}")
    notify = [channel_of[(spec.name, i)] for i in range(len(spec.notify))]
    return {
        "name": spec.name,
        "account": spec.account.name,
        "ids": [int(i) if i.isdigit() else i for i in spec.selector.ids],
        "retention": {"keep_last": spec.retention.keep_last},
        "snapshot_name": f"{literal}-{{timestamp}}",
        "adopt_legacy_names": True,
        **({"notify": notify} if notify else {}),
    }


def _settings(settings: RunSettings, base: str) -> dict:
    def local(path: str | None) -> str | None:
        return None if path is None else os.path.relpath(path, base)

    return {
        "lock_file": local(settings.lock_file),
        "log": {
            "file": local(settings.log_file),
            "max_bytes": settings.log_max_bytes,
            "backup_count": settings.log_backup_count,
            "level": settings.log_level,
        },
        "snapshot_creation_timeout": settings.snapshot_creation_timeout,
        "delay_between_servers": settings.delay_between_servers,
    }
