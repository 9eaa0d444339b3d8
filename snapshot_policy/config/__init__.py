"""Finding and loading the configuration, in either format, into one shape
(docs/promises.md §3, §4).

`--policy FILE` is a YAML policy; `--config FILE` (with optional server files) is the
legacy layout. With neither, the current directory decides: `snapshot-policy.yaml`, or
`snapshots.config` and/or `configs/*.json`. Server files given without `--config` take the
snapshots.config of their folder (`legacy.config_beside`). When both are there, it refuses to
guess: a switch of format must be the user's, not a side effect of a file appearing (such as
`migrate > snapshot-policy.yaml` creating it empty before migrate even runs).

Both formats become one policy-shaped document and then targets through `policy.build`;
nothing after this module knows which format a target came from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from snapshot_policy.config.legacy import LEGACY_CONFIG, MixedFolders, config_beside, load_legacy
from snapshot_policy.config.policy import load_policy
from snapshot_policy.config.policy import prices as load_prices
from snapshot_policy.config.problems import Problem
from snapshot_policy.core.model import Price, RunSettings, TargetFailure, TargetSpec

POLICY_FILE = "snapshot-policy.yaml"
LEGACY_CONFIGS_DIR = "configs"


@dataclass(frozen=True)
class LoadedConfig:
    files: tuple[str, ...]
    settings: RunSettings
    targets: tuple[TargetSpec, ...]
    problems: tuple[Problem, ...]
    failed: tuple[TargetFailure, ...]
    legacy: bool
    base: Path
    """The folder that relative paths in the configuration start from."""
    isolated_files: frozenset[str] = frozenset()
    document: Mapping | None = None
    """The policy-shaped document the targets were built from (for a legacy layout, what
    `migrate` prints); None when the files could not be read."""
    prices: Mapping[str, Price] = field(default_factory=lambda: load_prices({}))
    """What a GB of snapshots costs a month per provider (`settings.prices`, else the
    defaults), for the storage lines of a plan."""
    notes: tuple[str, ...] = ()
    """What the log says at INFO about where the configuration came from, when the tool
    chose it (the snapshots.config of server files given without --config)."""

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if not p.warning)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every secret value the configuration holds, for the log's redaction filter."""
        values = {t.account.token for t in self.targets}
        for target in self.targets:
            for channel in target.notify:
                values.update(
                    v
                    for v in (getattr(channel, "bot_token", None), getattr(channel, "secret", None))
                    if v
                )
                values.update(getattr(channel, "secrets", ()))  # an apprise channel's URLs
        return tuple(sorted(v for v in values if v))

    @property
    def critical(self) -> bool:
        """True when nothing should run: the policy or the INI is invalid, or no target loaded.

        A broken legacy server file is not critical: it fails alone.
        """
        return not self.targets or any(p.file not in self.isolated_files for p in self.errors)


def _by_kind(
    policy: Path | None, legacy_config: Path | None, files: Sequence[str]
) -> tuple[Path | None, Path | None, list[str]]:
    """Sort positional files by their kind, so `validate policy.yaml` works as well as
    `--policy`."""
    rest = []
    for name in files:
        if name.endswith((".yaml", ".yml")) and policy is None:
            policy = Path(name)
        elif name.endswith((".config", ".ini")) and legacy_config is None:
            legacy_config = Path(name)
        else:
            rest.append(name)
    return policy, legacy_config, rest


class NoConfiguration(Exception):
    """Nothing to load was given or found, or the current directory holds both formats; the
    message says where the tool looked and what to pass."""


def both_formats(cwd: Path) -> tuple[Path, Path, str] | None:
    """(policy, the snapshots.py layout's file or server files, the option that names that
    layout) when `cwd` holds both formats, else None: the tool will not guess which."""
    policy, legacy_config, configs = (
        cwd / POLICY_FILE,
        cwd / LEGACY_CONFIG,
        cwd / LEGACY_CONFIGS_DIR,
    )
    if not policy.is_file():
        return None
    if legacy_config.is_file():
        return policy, legacy_config, f"--config {legacy_config}"
    if configs.is_dir() and any(not p.name.startswith("._") for p in configs.glob("*.json")):
        servers = configs / "*.json"
        return policy, servers, f"the server files as arguments ({servers})"
    return None


def _discover(cwd: Path) -> tuple[Path | None, Path | None]:
    """Return (policy, legacy config) found in `cwd`; both None for a layout of server files
    only. Raise NoConfiguration if there is neither format, or both."""
    policy, legacy_config, configs = (
        cwd / POLICY_FILE,
        cwd / LEGACY_CONFIG,
        cwd / LEGACY_CONFIGS_DIR,
    )
    both = both_formats(cwd)
    if both:
        _, legacy, flag = both
        message = (
            f"both {policy} and {legacy} are here: give --policy {policy} to use the YAML policy, "
            f"or {flag} to keep the snapshots.py layout; the tool will not guess which"
        )
        if _is_empty(policy):
            message += (
                f". {policy} is empty, as `migrate > {POLICY_FILE}` leaves it: "
                f"remove it and run `snapshot-policy migrate --out {POLICY_FILE}`"
            )
        raise NoConfiguration(message)
    if policy.is_file():
        return policy, None
    if legacy_config.is_file():
        return None, legacy_config
    if not configs.is_dir():
        raise NoConfiguration(
            f"no configuration in {cwd}: give --policy FILE or --config snapshots.config, "
            f"or run where {POLICY_FILE}, {LEGACY_CONFIG} or {LEGACY_CONFIGS_DIR}/*.json is"
        )
    return None, None


def _is_empty(path: Path) -> bool:
    try:
        return not path.read_bytes().strip()
    except OSError:
        return False


def load(
    policy: Path | None = None,
    legacy_config: Path | None = None,
    server_files: Sequence[str] = (),
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> LoadedConfig:
    """Load the configuration the options name, or the one found in `cwd`.

    Raise NoConfiguration if none is named and `cwd` holds none, or both formats.
    """
    cwd = cwd or Path(".")  # relative, so messages name files as the user would
    env = os.environ if env is None else env
    policy, legacy_config, server_files = _by_kind(policy, legacy_config, server_files)
    if policy is None and legacy_config is None and not server_files:
        policy, legacy_config = _discover(cwd)
    if policy is not None:
        loaded = load_policy(policy, env)
        return LoadedConfig(
            (str(policy),),
            loaded.settings,
            tuple(loaded.targets),
            tuple(loaded.problems),
            (),
            legacy=False,
            base=policy.parent,
            document=loaded.document,
            prices=loaded.prices,
        )
    notes: tuple[str, ...] = ()
    found: tuple[Problem, ...] = ()
    home: Path | None = None
    if legacy_config is None and server_files:
        try:
            beside = config_beside(server_files, cwd)
        except MixedFolders as error:
            raise NoConfiguration(str(error)) from None
        legacy_config, notes, found = beside.config_file, (beside.note,), beside.problems
        home = beside.home
    loaded = load_legacy(legacy_config, server_files, cwd, home, env)
    return LoadedConfig(
        tuple(loaded.files),
        loaded.settings,
        tuple(loaded.targets),
        (*found, *loaded.problems),
        tuple(loaded.failed),
        legacy=True,
        base=legacy_config.parent if legacy_config else (home or cwd),
        isolated_files=frozenset(loaded.server_files),
        document=loaded.document,
        prices=loaded.prices,
        notes=notes,
    )
