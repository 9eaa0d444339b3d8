"""`server_overrides` (issue 23, item 4): read with the schema's default, from defaults or the
target; `autobackup` on a DigitalOcean target named by file, key and fix; a legacy layout
reads no server's labels."""

from __future__ import annotations

from snapshot_policy.config.policy import load_policy
from tests.unit.config.test_legacy import layout, server
from tests.unit.config.test_legacy import load as load_legacy

ACCOUNTS = (
    "version: 1\naccounts:\n"
    "  hz: {provider: hetzner, token: literal-token}\n"
    "  do: {provider: digitalocean, token: literal-token}\n"
)


def load(tmp_path, target: str = "", account: str = "hz", defaults: str = ""):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        ACCOUNTS
        + defaults
        + f"targets:\n  - name: web\n    account: {account}\n    ids: [1]\n"
        + "    retention: {keep_last: 2}\n"
        + target
    )
    return policy, load_policy(policy, {})


def errors(loaded):
    return [str(p) for p in loaded.problems if not p.warning]


def test_labels_is_the_default_and_each_mode_is_read(tmp_path):
    _, loaded = load(tmp_path)
    assert loaded.targets[0].server_overrides == "labels"
    for mode in ("autobackup", "off"):
        _, loaded = load(tmp_path, f"    server_overrides: {mode}\n")
        assert loaded.targets[0].server_overrides == mode
    _, loaded = load(tmp_path, defaults="defaults: {server_overrides: 'off'}\n")
    assert loaded.targets[0].server_overrides == "off"


def test_an_unknown_mode_is_refused_by_the_schema(tmp_path):
    policy, loaded = load(tmp_path, "    server_overrides: tags\n")
    assert not loaded.targets
    [error] = errors(loaded)
    assert str(policy) in error and "server_overrides" in error and "labels" in error


def test_autobackup_on_a_digitalocean_target_names_the_file_key_and_fix(tmp_path):
    policy, loaded = load(tmp_path, "    server_overrides: autobackup\n", account="do")
    assert not loaded.targets
    assert errors(loaded) == [
        f"{policy}:10: targets[0].server_overrides: autobackup reads hcloud-snapshot-as-backup's "
        "Hetzner labels, and account 'do' is DigitalOcean's; use labels (the tags "
        "snapshot-policy:keep-last:14 and the like) or off"
    ]
    _, loaded = load(tmp_path, account="do", defaults="defaults: {server_overrides: autobackup}\n")
    assert [e.split(": ", 2)[1] for e in errors(loaded)] == ["defaults.server_overrides"]


def test_an_unquoted_off_which_yaml_reads_as_false_means_off(tmp_path):
    _, loaded = load(tmp_path, "    server_overrides: off\n")
    assert loaded.problems == [] and loaded.targets[0].server_overrides == "off"


def test_a_legacy_layout_reads_no_servers_labels(tmp_path):
    loaded = load_legacy(layout(tmp_path, web=server(), db=server("hetzner", id=4711, name="db")))
    assert {t.server_overrides for t in loaded.targets} == {"off"}
