"""The policy keys of issue 22: a target's `drill`, `retention.keep_verified`,
`accounts.<name>.snapshot_limit`, `settings.uncovered.ignore` and
`settings.drills_per_account`; each mistake named by file, key and fix."""

from __future__ import annotations

from dataclasses import replace

import pytest

from snapshot_policy.config.policy import load_policy
from snapshot_policy.core import reconcile
from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import Drill, Selector, Server
from snapshot_policy.core.resolve import resolve

ACCOUNTS = (
    "version: 1\naccounts:\n"
    "  hz: {provider: hetzner, token: literal-token}\n"
    "  do: {provider: digitalocean, token: literal-token, snapshot_limit: 200}\n"
)


def load(tmp_path, target: str = "", settings: str = "", account: str = "hz", defaults=""):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        ACCOUNTS
        + defaults
        + (f"settings:\n{settings}" if settings else "")
        + f"targets:\n  - name: web\n    account: {account}\n    ids: [1]\n"
        + "    retention: {keep_last: 2}\n"
        + target
    )
    return policy, load_policy(policy, {})


def errors(loaded):
    return [str(p) for p in loaded.problems if not p.warning]


def warnings(loaded):
    return [str(p) for p in loaded.problems if p.warning]


def test_a_drill_is_read_with_the_schemas_defaults(tmp_path):
    _, loaded = load(tmp_path, "    drill: {every: 7d}\n", account="do")
    assert loaded.problems == []
    assert loaded.targets[0].drill == Drill(every=Duration(days=7))


def test_every_drill_key_is_read(tmp_path):
    _, loaded = load(
        tmp_path,
        "    drill:\n"
        "      every: 2w\n"
        "      probe: [/usr/local/bin/check, --port, '5432']\n"
        "      probe_timeout: 60\n"
        "      boot_timeout: 600.5\n"
        "      public_network: true\n"
        "      networks: [12, '13']\n"
        "      machine_type: cx22\n"
        "      env: [PGPASSWORD]\n",
    )
    assert loaded.problems == []
    assert loaded.targets[0].drill == Drill(
        every=Duration(days=14),
        probe=("/usr/local/bin/check", "--port", "5432"),
        probe_timeout=60.0,
        boot_timeout=600.5,
        public_network=True,
        networks=("12", "13"),
        machine_type="cx22",
        env=("PGPASSWORD",),
    )


def test_a_targets_drill_reaches_its_servers(tmp_path):
    _, loaded = load(tmp_path, "    drill: {every: 1m}\n")
    targets, _ = resolve(loaded.targets, [Server("1", "web-1")], {})
    assert targets[0].drill == Drill(every=Duration(months=1))


@pytest.mark.parametrize(
    "drill, message",
    [
        ("{}", "targets[0].drill: missing required key 'every'"),
        ("{every: 7}", "targets[0].drill.every: must be a string, not the number 7"),
        ("{every: 0d}", "targets[0].drill.every: '0d' is a zero duration; give a positive one"),
        (
            "{every: 7d, probe: 'check --port 5432'}",
            "targets[0].drill.probe: must be a list, not the string 'check --port 5432'",
        ),
        ("{every: 7d, probe: []}", "targets[0].drill.probe: must list at least one item"),
        ("{every: 7d, probe_timeout: 0}", "targets[0].drill.probe_timeout: must be more than 0"),
        ("{every: 7d, boot_timeout: 86401}", "targets[0].drill.boot_timeout: must be 86400"),
        (
            "{every: 7d, networks: [net-a]}",
            "targets[0].drill.networks[0]: 'net-a' is not in the expected form: a Hetzner network",
        ),
        ("{every: 7d, env: [1A]}", "targets[0].drill.env[0]: '1A' is not in the expected form"),
        (
            "{every: 7d, machine: cx22}",
            "targets[0].drill: unknown key 'machine'; did you mean 'machine_type'?",
        ),
    ],
)
def test_a_bad_drill_is_refused_naming_the_file_and_key(drill, message, tmp_path):
    policy, loaded = load(tmp_path, f"    drill: {drill}\n")
    assert loaded.targets == []
    [error] = errors(loaded)
    assert error.startswith(f"{policy}:")
    assert message in error


def test_networks_on_digitalocean_are_a_warning_not_an_error(tmp_path):
    _, loaded = load(tmp_path, "    drill: {every: 7d, networks: [5]}\n", account="do")
    assert loaded.targets and errors(loaded) == []
    [warning] = warnings(loaded)
    assert "targets[0].drill.networks: networks are Hetzner private networks" in warning


def test_a_hetzner_drill_without_networks_is_no_warning_it_gets_a_public_ipv6(tmp_path):
    for drill in ("{every: 7d, probe: [check]}", "{every: 7d}", "{every: 7d, networks: [5]}"):
        _, loaded = load(tmp_path, f"    drill: {drill}\n")
        assert loaded.targets and loaded.problems == []


def test_a_drill_is_not_a_key_of_defaults(tmp_path):
    _, loaded = load(tmp_path, defaults="defaults:\n  drill: {every: 7d}\n")
    [error] = errors(loaded)
    assert "defaults: unknown key 'drill'" in error


def test_keep_verified_is_read_and_needs_another_rule(tmp_path):
    policy = tmp_path / "q.yaml"
    policy.write_text(
        ACCOUNTS + "targets:\n  - name: web\n    account: hz\n    ids: [1]\n"
        "    retention: {keep_daily: 7, keep_verified: 2}\n"
        "    drill: {every: 7d, public_network: true}\n"
    )
    loaded = load_policy(policy, {})
    assert loaded.problems == []
    assert loaded.targets[0].retention.keep_verified == 2
    policy.write_text(
        ACCOUNTS + "targets:\n  - name: web\n    account: hz\n    ids: [1]\n"
        "    retention: {keep_verified: 2}\n    drill: {every: 7d}\n"
    )
    [error] = errors(load_policy(policy, {}))
    assert error.startswith(f"{policy}:")
    assert "targets[0].retention.keep_verified: keep_verified only adds to the other rules" in error
    assert "set at least one other rule above 0 too, e.g. keep_daily: 7" in error


def test_keep_verified_without_a_drill_is_warned_of_where_it_is_set(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        ACCOUNTS + "defaults:\n  retention: {keep_daily: 7, keep_verified: 1}\n"
        "targets:\n  - {name: web, account: hz, ids: [1]}\n"
    )
    loaded = load_policy(policy, {})
    assert loaded.targets
    [warning] = warnings(loaded)
    assert "defaults.retention.keep_verified: target 'web' has no drill" in warning


def test_keep_verified_is_bounded(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        ACCOUNTS + "targets:\n  - {name: web, account: hz, ids: [1], "
        "retention: {keep_last: 1, keep_verified: -1}}\n"
    )
    [error] = errors(load_policy(policy, {}))
    assert "targets[0].retention.keep_verified: must be 0 or more, not -1" in error


def test_the_accounts_snapshot_limit_is_read_and_bounded(tmp_path):
    _, loaded = load(tmp_path)
    assert {t.account.name: t.account.snapshot_limit for t in loaded.targets} == {"hz": None}
    _, loaded = load(tmp_path, account="do")
    assert loaded.targets[0].account.snapshot_limit == 200
    policy = tmp_path / "p.yaml"
    policy.write_text(policy.read_text().replace("snapshot_limit: 200", "snapshot_limit: 0"))
    [error] = errors(load_policy(policy, {}))
    assert "accounts.do.snapshot_limit: must be 1 or more, not 0" in error


def test_uncovered_ignore_and_drills_per_account_are_read(tmp_path):
    _, loaded = load(tmp_path)
    assert (loaded.settings.uncovered_ignore, loaded.settings.drills_per_account) == ((), 2)
    _, loaded = load(
        tmp_path,
        settings=(
            "  drills_per_account: 5\n"
            "  uncovered:\n"
            "    ignore:\n"
            "      - {ids: [7, '8']}\n"
            "      - {names: [bastion]}\n"
            "      - {label_selector: backup=none}\n"
        ),
    )
    assert loaded.problems == []
    assert loaded.settings.drills_per_account == 5
    assert loaded.settings.uncovered_ignore == (
        Selector(ids=("7", "8")),
        Selector(names=("bastion",)),
        Selector(label_selector="backup=none"),
    )


@pytest.mark.parametrize(
    "settings, message",
    [
        ("  drills_per_account: 11\n", "settings.drills_per_account: must be 10 or less, not 11"),
        ("  drills_per_account: 0\n", "settings.drills_per_account: must be 1 or more, not 0"),
        (
            "  uncovered: {ignore: [{}]}\n",
            "settings.uncovered.ignore[0]: missing one of the keys ids, names or label_selector",
        ),
        (
            "  uncovered: {ignore: [{names: [a], ids: [1]}]}\n",
            "settings.uncovered.ignore[0]: give only one of ids, names or label_selector",
        ),
        ("  uncovered: {ignore: web}\n", "settings.uncovered.ignore: must be a list"),
    ],
)
def test_bad_run_settings_for_drills_and_status_are_refused(settings, message, tmp_path):
    policy, loaded = load(tmp_path, settings=settings)
    [error] = errors(loaded)
    assert error.startswith(f"{policy}:") and message in error


def test_the_drill_is_part_of_the_config_fingerprint(tmp_path):
    _, plain = load(tmp_path)
    _, drilled = load(tmp_path, "    drill: {every: 7d}\n")
    _, probed = load(tmp_path, "    drill: {every: 7d, probe: [check], public_network: true}\n")
    prints = set()
    for loaded in (plain, drilled, probed):
        targets, _ = resolve(loaded.targets, [Server("1", "web-1")], {})
        prints.add(reconcile.config_fingerprint(targets, reconcile.DEFAULT_CREATION_TIMEOUT))
    assert len(prints) == 3
    assert replace(drilled.targets[0], drill=None) == plain.targets[0]
