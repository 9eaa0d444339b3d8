"""migrate prints the normalised legacy document (issue 14, item 4): numbers as written,
multi-line templates as YAML blocks, one variable per distinct secret, never a secret."""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_legacy import _INI_SECTIONS, layout, load, server, servers

from snapshot_policy.config.migrate import dump, migrate
from snapshot_policy.config.policy import load_policy
from snapshot_policy.config.secrets import LiteralSecret


def body(text: str) -> dict:
    return yaml.safe_load(text)


def test_numbers_stay_as_written_and_templates_print_as_blocks(tmp_path):
    ini = (
        "[TELEGRAM]\nbot_token = 1:a\nchat_id = 5\ntimeout = 10\n"
        "base_delay_between_retries = 2.5\nmessage_success = *OK* `{server_name}`\\nsnapshot "
        "`{snapshot_name}`\n"
    )
    text = migrate(load(layout(tmp_path, ini, web=server())).document, tmp_path).text
    assert (
        "    timeout: 10\n" in text
        and "    base_delay_between_retries: 2.5\n" in text
        and "  delay_between_servers: 5\n" in text  # snapshots.py's code's default
    )
    assert (
        "    message_success: |-\n      *OK* `{server_name}`\n      snapshot `{snapshot_name}`\n"
        in text
    )
    assert "  ids: [3164444]\n" in text and "  notify: [telegram]\n" in text
    assert (
        body(text)["notifications"]["telegram"]["message_success"]
        == "*OK* `{server_name}`\nsnapshot `{snapshot_name}`"
    )


@pytest.mark.parametrize(
    "text",
    [
        "a\nb",
        "a\nb\n",
        "a\n\n",
        "\nleading break",
        "  indented\nnext",
        "trailing space \nnext",
        "tab\there\nx",
        "ünïcode ✅\n{server_name}",
        "# not a comment\n- not a list",
        "x: y\n'quoted'",
        "\ttab first\nx",
        "a\r\nb",
        "next\x85line",
        "line\u2028separator\n",
        "\x85",
        "x\u2029",
    ],
)
def test_any_text_prints_so_that_it_reads_back_the_same(text):
    assert yaml.safe_load(dump({"message_success": text, "list": [text, "plain"]})) == {
        "message_success": text,
        "list": [text, "plain"],
    }


def test_one_secret_value_used_twice_is_one_variable(tmp_path):
    ini = "[TELEGRAM]\nbot_token = 1:shared\nchat_id = 5\n"
    folder = layout(
        tmp_path,
        ini,
        a=server(),
        b=server("hetzner", id=2, telegram={"bot_token": "1:shared", "chat_id": "6"}),
        c=server(id=3, api_token="digitalocean-token"),
    )
    migration = migrate(load(folder).document, folder)
    policy = body(migration.text)
    assert {name: c["bot_token"] for name, c in policy["notifications"].items()} == {
        "telegram": "env:TELEGRAM_BOT_TOKEN",
        "telegram-2": "env:TELEGRAM_BOT_TOKEN",
    }
    assert {name: a["token"] for name, a in policy["accounts"].items()} == {
        "digitalocean-1": "env:DIGITALOCEAN_TOKEN_1",
        "hetzner-1": "env:HCLOUD_TOKEN_1",
    }
    assert migration.exports == (
        f"export DIGITALOCEAN_TOKEN_1=...  # the api_token of {folder / 'configs' / 'a.json'}",
        f"export HCLOUD_TOKEN_1=...  # the api_token of {folder / 'configs' / 'b.json'}",
        "export TELEGRAM_BOT_TOKEN=...  # the bot_token in [TELEGRAM] of "
        f"{folder / 'snapshots.config'} and the telegram.bot_token of "
        f"{folder / 'configs' / 'b.json'}",
    )
    for secret in ("1:shared", "digitalocean-token", "hetzner-token"):
        assert secret not in migration.text and all(
            secret not in line for line in migration.exports
        )


def test_two_secrets_that_would_share_a_variable_name_get_two(tmp_path):
    document = {
        "version": 1,
        "accounts": {
            "digitalocean-1": {"provider": "digitalocean", "token": LiteralSecret("x", "a")},
            "digitalocean-1b": {"provider": "digitalocean", "token": LiteralSecret("y", "b")},
        },
        "targets": [],
    }
    assert [line.split("=")[0] for line in migrate(document, tmp_path).exports] == [
        "export DIGITALOCEAN_TOKEN_1",
        "export DIGITALOCEAN_TOKEN_1B",
    ]
    document["accounts"]["digitalocean-1b"]["token"] = LiteralSecret("y", "b")
    document["accounts"]["other-1"] = {"provider": "digitalocean", "token": LiteralSecret("z", "c")}
    assert [line.split("=")[0] for line in migrate(document, tmp_path).exports][
        -1
    ] == "export DIGITALOCEAN_TOKEN_1_2"


def test_a_secret_left_in_the_document_is_refused_and_not_shown():
    with pytest.raises(yaml.representer.RepresenterError) as refused:
        dump({"token": LiteralSecret("dop_v1_secret", "the api_token of x.json")})
    assert "dop_v1_secret" not in str(refused.value)


def test_written_elsewhere_the_paths_are_relative_to_the_written_file(tmp_path):
    folder = layout(
        tmp_path,
        "[DIRECTORIES]\nlogs_dir = logs\n[FILES]\nlog_file = /var/log/snap.log\n",
        web=server(),
    )
    out = tmp_path / "policies" / "snapshot-policy.yaml"
    migration = migrate(load(folder).document, folder, out)
    settings = body(migration.text)["settings"]
    assert (settings["lock_file"], settings["log"]["file"]) == (
        "../logs/snapshots.lock",
        "/var/log/snap.log",
    )
    assert "relative to the folder of this file" in migration.text
    assert (
        body(migrate(load(folder).document, folder).text)["settings"]["lock_file"]
        == "logs/snapshots.lock"
    )


def _environment(document: dict, text: str) -> dict[str, str]:
    """The values of the variables migrate named, found where its env: references stand."""
    printed = body(text)
    env = {}
    for section, key in (("accounts", "token"), ("notifications", "bot_token")):
        for name, entry in document.get(section, {}).items():
            if isinstance(entry.get(key), LiteralSecret):
                env[printed[section][name][key].removeprefix("env:")] = entry[key].value
    return env


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=st.lists(
        servers(),
        min_size=1,
        max_size=4,
        unique_by=lambda s: (*s, str(next(iter(s.values()))["id"])),
    ),
    sections=_INI_SECTIONS,
)
def test_the_printed_policy_builds_the_same_targets_as_the_legacy_files(
    tmp_path_factory, files, sections
):
    folder = layout(
        tmp_path_factory.mktemp("legacy"),
        "\n".join(sections) or None,
        **{f"s{i}": copy.deepcopy(f) for i, f in enumerate(files)},
    )
    legacy = load(folder)
    migration = migrate(legacy.document, folder)
    (folder / "snapshot-policy.yaml").write_text(migration.text)
    migrated = load_policy(
        folder / "snapshot-policy.yaml", _environment(legacy.document, migration.text)
    )
    # a plain-http webhook the legacy files sent: allowed, and a warning under -v (issue 21)
    assert [p for p in migrated.problems if "(allow_plain_http: true)" not in p.message] == []
    assert migrated.settings == legacy.settings
    assert [
        (
            t.name,
            t.account,
            t.selector,
            t.retention,
            t.server_name,
            t.name_pattern,
            t.adopt_legacy_names,
            t.notify,
            t.owner,
        )
        for t in migrated.targets
    ] == [
        (
            t.name,
            t.account,
            t.selector,
            t.retention,
            t.server_name,
            t.name_pattern,
            t.adopt_legacy_names,
            t.notify,
            t.owner,
        )
        for t in legacy.targets
    ]
    payloads = [
        [(c.payload_success, c.payload_failure) for c in t.notify if hasattr(c, "payload_success")]
        for t in migrated.targets
    ]
    assert payloads == [
        [(c.payload_success, c.payload_failure) for c in t.notify if hasattr(c, "payload_success")]
        for t in legacy.targets
    ]
    printed = body(migration.text)
    secrets = [a["token"] for a in printed["accounts"].values()] + [
        c["bot_token"] for c in printed.get("notifications", {}).values() if "bot_token" in c
    ]
    assert all(s.startswith("env:") for s in secrets) and len(set(secrets)) == len(
        {t.account.token for t in legacy.targets}
        | {c.bot_token for t in legacy.targets for c in t.notify if hasattr(c, "bot_token")}
    )
