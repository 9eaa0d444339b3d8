"""Legacy files normalised into the policy's shape, and built into targets by the policy's
builder (issue 14, items 1 and 4)."""

from __future__ import annotations

import copy
import json
from dataclasses import fields, replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapshot_policy.config import legacy, policy
from snapshot_policy.config.schemas import default, validate
from snapshot_policy.config.secrets import LiteralSecret
from snapshot_policy.config.sources import Source
from snapshot_policy.core.model import (
    DEFAULT_NAME_PATTERN,
    RetentionPolicy,
    RunSettings,
    Safety,
    TargetSpec,
    TelegramChannel,
    WebhookChannel,
)

INI = (
    "[DIRECTORIES]\nlogs_dir = var/logs\n\n[TIMING]\ndelay_between_servers = 20\n\n"
    "[TELEGRAM]\nenabled = true\nbot_token = 123:global\nchat_id = -100\ntimeout = 10\n"
    "message_success = *OK* {server_name}\\n{snapshot_info}\n\n"
    "[WEBHOOK]\nenabled = false\nurl = https://hooks.example.com/all\n"
    "base_delay_between_retries = 2.5\n"
)


def server(provider: str = "digitalocean", **changes: object) -> dict:
    wrapper = "digitalocean_droplet" if provider == "digitalocean" else "hetzner_cloud_server"
    body = {
        "provider": provider,
        "id": "3164444",
        "name": "web",
        "api_token": f"{provider}-token",
        "retain_last_snapshots": 3,
    }
    return {wrapper: {**body, **changes}}


def layout(tmp_path: Path, ini: str | None = INI, **servers: dict) -> Path:
    if ini is not None:
        (tmp_path / "snapshots.config").write_text(ini)
    (tmp_path / "configs").mkdir()
    for name, data in servers.items():
        (tmp_path / "configs" / f"{name}.json").write_text(json.dumps(data))
    return tmp_path


def load(folder: Path, *args: str) -> legacy.LegacyLoad:
    config = folder / "snapshots.config"
    return legacy.load_legacy(config if config.is_file() else None, args, folder)


def plain(node: object) -> object:
    """The document with each LiteralSecret as the env: reference a policy would hold."""
    if isinstance(node, LiteralSecret):
        return "env:A_SECRET"
    if isinstance(node, dict):
        return {key: plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [plain(value) for value in node]
    return node


def test_each_server_file_is_a_target_named_after_it_and_a_name_may_repeat(tmp_path):
    loaded = load(layout(tmp_path, **{"do-web": server(), "hz-web": server("hetzner", id=4711)}))
    assert loaded.problems == [] and loaded.failed == []
    assert [(t.name, t.server_name, t.account.name, t.selector.ids) for t in loaded.targets] == [
        ("do-web", "web", "digitalocean-1", ("3164444",)),
        ("hz-web", "web", "hetzner-1", ("4711",)),
    ]
    assert [t.source for t in loaded.targets] == [
        str(tmp_path / "configs" / "do-web.json"),
        str(tmp_path / "configs" / "hz-web.json"),
    ]


def test_files_of_one_name_from_two_folders_keep_their_paths_and_one_file_twice_is_one_target(
    tmp_path,
):
    for folder, server_id in (("a", 1), ("b", 2)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "web.json").write_text(json.dumps(server(id=server_id)))
    loaded = legacy.load_legacy(None, ["a/web.json", "b/web.json", "a/../a/web.json"], tmp_path)
    assert [t.name for t in loaded.targets] == [
        str(tmp_path / "a" / "web.json"),
        str(tmp_path / "b" / "web.json"),
    ]
    assert legacy.target_names([Path("configs/web.json"), Path("configs/db.json")]) == {
        Path("configs/web.json"): "web",
        Path("configs/db.json"): "db",
    }


def test_a_broken_file_fails_as_the_target_named_after_it(tmp_path):
    loaded = load(layout(tmp_path, web=server(), db=server(retain_last_snapshots=-1)))
    assert [t.name for t in loaded.targets] == ["web"]
    assert [(f.target, f.reason) for f in loaded.failed] == [
        ("db", f"{tmp_path / 'configs' / 'db.json'}: invalid configuration")
    ]


def test_the_document_is_the_policy_shape_that_migrate_prints(tmp_path):
    own = {
        "enabled": True,
        "bot_token": "456:own",
        "chat_id": 42,
        "message_failure": "FAILED {server_name}",
    }
    hook = {
        "enabled": True,
        "url": "https://hooks.example.com/db",
        "payload_success": {"server": "{server_name}", "n": "{total_snapshots}"},
    }
    loaded = load(
        layout(
            tmp_path,
            web=server(),
            db=server(
                "hetzner", id=4711, name="db", telegram=own, webhook=hook, retain_last_snapshots=0
            ),
        )
    )
    document = loaded.document
    assert validate(plain(document), "policy.schema.json", Source("f", plain(document))) == []
    assert document["accounts"] == {
        "digitalocean-1": {
            "provider": "digitalocean",
            "token": LiteralSecret("digitalocean-token", ""),
        },
        "hetzner-1": {"provider": "hetzner", "token": LiteralSecret("hetzner-token", "")},
    }
    assert document["notifications"] == {
        "telegram": {
            "type": "telegram",
            "style": "snapshots.py",
            "bot_token": LiteralSecret("456:own", ""),
            "chat_id": "42",
            "message_success": "*OK* {server_name}\n{snapshot_info}",
            "message_failure": "FAILED {server_name}",
            "timeout": 10,
            "retries": 3,
            "base_delay_between_retries": 2,
        },
        "webhook": {
            "type": "webhook",
            "style": "snapshots.py",
            "url": "https://hooks.example.com/db",
            "payload_success": {"server": "{server_name}", "n": "{total_snapshots}"},
            "timeout": 10,
            "retries": 3,
            "base_delay_between_retries": 2.5,
        },
        "telegram-2": {
            "type": "telegram",
            "style": "snapshots.py",
            "bot_token": LiteralSecret("123:global", ""),
            "chat_id": "-100",
            "message_success": "*OK* {server_name}\n{snapshot_info}",
            "timeout": 10,
            "retries": 3,
            "base_delay_between_retries": 2,
        },
    }
    assert document["targets"] == [
        {
            "name": "db",
            "account": "hetzner-1",
            "ids": [4711],
            "server_name": "db",
            "retention": {"keep_last": 1},
            "adopt_legacy_names": True,
            "server_overrides": "off",  # snapshots.py read no server's labels (issue 23)
            "notify": ["telegram", "webhook"],
        },
        {
            "name": "web",
            "account": "digitalocean-1",
            "ids": [3164444],
            "server_name": "web",
            "retention": {"keep_last": 3},
            "adopt_legacy_names": True,
            "server_overrides": "off",  # snapshots.py read no server's labels (issue 23)
            "notify": ["telegram-2"],
        },
    ]
    assert document["settings"] == {
        "owner": policy.location_owner(tmp_path),
        "lock_file": "var/logs/snapshots.lock",
        "log": {
            "file": "var/logs/snapshots.log",
            "max_bytes": 5242880,
            "backup_count": 5,
            "level": "DEBUG",
        },
        # snapshots.py's default, not a policy's (issue 21, item 6)
        "snapshot_creation_timeout": 900,
        "delay_between_servers": 20,
    }
    assert (
        document["accounts"]["hetzner-1"]["token"].origin
        == f"the api_token of {tmp_path / 'configs' / 'db.json'}"
    )


def test_the_targets_are_what_the_policy_builder_makes_of_the_document(tmp_path):
    loaded = load(layout(tmp_path, web=server(), db=server("hetzner", id=4711, name="db")))
    built = policy.build(Source("doc", loaded.document), {}, tmp_path)
    assert built.problems == []
    assert [replace(t, source="") for t in built.targets] == [
        replace(t, source="") for t in loaded.targets
    ]
    assert built.settings == loaded.settings
    assert loaded.settings.lock_file == str(tmp_path / "var" / "logs" / "snapshots.lock")
    web = loaded.targets[1]
    assert (web.name_pattern, web.adopt_legacy_names, web.retention, web.schedule.describe()) == (
        DEFAULT_NAME_PATTERN,
        True,
        RetentionPolicy(keep_last=3),
        "every run",
    )


def test_servers_whose_merged_settings_agree_share_one_channel(tmp_path):
    loaded = load(
        layout(
            tmp_path,
            a=server(),
            b=server("hetzner", id=2),
            c=server(id=3, telegram={"chat_id": "7"}),
        )
    )
    telegram = [t.notify for t in loaded.targets]
    assert telegram[0] == telegram[1] and telegram[0][0] is telegram[1][0]
    assert [c.name for c in telegram[0] + telegram[2]] == ["telegram", "telegram-2"]
    assert (telegram[2][0].chat_id, telegram[2][0].bot_token) == ("7", "123:global")


def test_a_legacy_secret_is_taken_as_it_is_never_as_a_reference(tmp_path):
    loaded = load(layout(tmp_path, web=server(api_token="env:NOT_A_VARIABLE\n")))
    assert loaded.problems == []
    assert loaded.targets[0].account.token == "env:NOT_A_VARIABLE"


def test_a_webhook_that_would_not_be_sent_is_a_warning_and_no_channel(tmp_path):
    """(Plain http to another host is sent: tests/unit/config/test_plain_http.py.)"""
    loaded = load(
        layout(tmp_path, web=server(webhook={"enabled": True, "url": "ftp://hooks.example.com/x"}))
    )
    assert [(p.path, p.warning) for p in loaded.problems] == [
        ("digitalocean_droplet.webhook.url", True)
    ]
    assert [type(c) for c in loaded.targets[0].notify] == [TelegramChannel]
    assert "webhook" not in loaded.document.get("notifications", {})


def test_without_snapshots_config_the_legacy_defaults_apply(tmp_path):
    """delay_between_servers is 5, what snapshots.py's code waited (its manual said 20)."""
    loaded = load(layout(tmp_path, None, web=server()))
    assert [p.warning for p in loaded.problems] == [True]
    assert (
        loaded.settings.lock_file,
        loaded.settings.log_level,
        loaded.settings.delay_between_servers,
    ) == (str(tmp_path / "logs" / "snapshots.lock"), "DEBUG", 5)
    assert loaded.targets[0].notify == ()  # Telegram on by default, but no token or chat anywhere


# -- the one place defaults are written -------------------------------------------------------


def test_the_model_defaults_agree_with_the_policy_schema():
    """The builder passes every value, from the schema's defaults; the dataclasses' own
    defaults (used by tests and benchmarks that build channels directly) must say the same."""
    for channel in (TelegramChannel, WebhookChannel):
        defaults = {f.name: f.default for f in fields(channel)}
        assert (defaults["timeout"], defaults["retries"], defaults["base_delay"]) == (
            default("policy", "$defs/timeout"),
            default("policy", "$defs/retries"),
            default("policy", "$defs/base_delay"),
        )
    assert {f.name: f.default for f in fields(TelegramChannel)}["summary"] == default(
        "policy", "$defs/telegram_channel/summary"
    )
    assert Safety().max_deletions == default("policy", "$defs/safety/max_deletions")
    assert DEFAULT_NAME_PATTERN == default("policy", "$defs/snapshot_name")
    assert {f.name: f.default for f in fields(TargetSpec)}["adopt_legacy_names"] == default(
        "policy", "$defs/adopt_legacy_names"
    )
    assert all(
        getattr(RetentionPolicy(), rule) == default("policy", "$defs/count")
        for rule in RetentionPolicy.COUNTED_RULES
    )
    run = RunSettings(lock_file="x")
    assert (
        run.log_max_bytes,
        run.log_backup_count,
        run.log_level,
        run.snapshot_creation_timeout,
        run.request_timeout,
        run.delay_between_servers,
    ) == tuple(
        default("policy", f"settings/{key}")
        for key in (
            "log/max_bytes",
            "log/backup_count",
            "log/level",
            "snapshot_creation_timeout",
            "request_timeout",
            "delay_between_servers",
        )
    )


def test_a_policy_that_leaves_everything_out_gets_the_schemas_defaults(tmp_path):
    document = {
        "version": 1,
        "accounts": {"hz": {"provider": "hetzner", "token": "t"}},
        "targets": [{"name": "web", "account": "hz", "ids": [1], "retention": {"keep_daily": 7}}],
    }
    built = policy.build(Source("p.yaml", document), {}, tmp_path)
    [target] = built.targets
    assert (
        target.timezone,
        target.name_pattern,
        target.safety.max_deletions,
        target.adopt_legacy_names,
    ) == ("UTC", "{server_name}-{timestamp}", 10, False)
    # a policy that names no owner is named by its path
    owner = policy.location_owner(Path("p.yaml"))
    assert built.settings == RunSettings(
        lock_file=str(tmp_path / "snapshot-policy.lock"), owner=owner
    )


def test_default_names_the_key_that_has_none():
    with pytest.raises(KeyError, match="no default at settings/log/file"):
        default("policy", "settings/log/file")


def test_server_name_stands_for_one_server_given_by_id(tmp_path):
    document = {
        "version": 1,
        "accounts": {"hz": {"provider": "hetzner", "token": "t"}},
        "targets": [
            {
                "name": "a",
                "account": "hz",
                "ids": [1],
                "server_name": "web",
                "retention": {"keep_last": 1},
            },
            {
                "name": "b",
                "account": "hz",
                "names": ["x", "y"],
                "server_name": "web",
                "retention": {"keep_last": 1},
            },
        ],
    }
    problems = policy.build(Source("p.yaml", document), {}, tmp_path).problems
    assert [str(p) for p in problems] == [
        "p.yaml: targets[1].server_name: stands for one server: select exactly one with ids, "
        "or leave server_name out and each server keeps its own name"
    ]
    del document["targets"][1]
    assert policy.build(Source("p.yaml", document), {}, tmp_path).targets[0].server_name == "web"


# -- any valid legacy layout normalises into a valid policy ------------------------------------

_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF), min_size=1, max_size=12)
_TEMPLATES = st.sampled_from(
    [
        "{server_name} done",
        "*OK* `{server_name}`\n{snapshot_info}",
        "line\n\nbreak {timestamp}",
        "your_message_here",
        "",
    ]
)
_TOKEN = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)
_URLS = st.sampled_from(
    [
        "https://hooks.example.com/a",
        "http://127.0.0.1:9/x",
        "http://hooks.example.com/b",
        "your-webhook-url",
        "https://hooks.example.com/a",
    ]
)


@st.composite
def servers(draw):
    provider = draw(st.sampled_from(["digitalocean", "hetzner"]))
    body = {
        "provider": provider,
        "id": draw(st.one_of(st.integers(1, 2**63 - 1), st.integers(1, 10**18).map(str))),
        "name": draw(_TEXT),
        "api_token": draw(st.sampled_from(["tok-a", "tok-b", " tok-a\n"]) | _TOKEN),
        "retain_last_snapshots": draw(st.integers(0, 100000)),
    }
    if draw(st.booleans()):
        body["telegram"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "enabled": st.booleans(),
                    "bot_token": st.sampled_from(["1:a", "2:b", "your_telegram_bot_token_here"]),
                    "chat_id": st.one_of(
                        st.integers(-(10**15), 10**15),
                        st.sampled_from(["-100", "@ops", "your_chat_id"]),
                    ),
                    "message_success": _TEMPLATES,
                    "message_failure": _TEMPLATES,
                },
            )
        )
    if draw(st.booleans()):
        body["webhook"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "enabled": st.booleans(),
                    "url": _URLS,
                    "payload_success": st.just(
                        {"server": "{server_name}", "list": ["{status}", 1, None]}
                    ),
                },
            )
        )
    return {"digitalocean_droplet" if provider == "digitalocean" else "hetzner_cloud_server": body}


_INI_SECTIONS = st.fixed_dictionaries(
    {},
    optional={
        "TELEGRAM": st.sampled_from(
            [
                "enabled = false\n",
                "bot_token = 9:ini\nchat_id = -5\ntimeout = 2.5\nretries = 0\n"
                "message_failure = x\\ny {server_name}\n",
            ]
        ),
        "WEBHOOK": st.sampled_from(
            [
                "enabled = yes\nurl = https://hooks.example.com/ini\n"
                'payload_failure = {"s": "{status}"}\n',
                "url = http://hooks.example.com/ini\n",
            ]
        ),
        "TIMING": st.just("delay_between_servers = 0.5\nsnapshot_creation_timeout = 60\n"),
        "LOGGING": st.just("level = warning\nmax_bytes = 0\n"),
        "FILES": st.just("lock_file = my.lock\n"),
    },
).map(lambda sections: [f"[{name}]\n{body}" for name, body in sections.items()])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
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
def test_any_valid_legacy_layout_normalises_into_a_policy_the_builder_and_schema_accept(
    tmp_path_factory, files, sections
):
    folder = layout(
        tmp_path_factory.mktemp("legacy"),
        "\n".join(sections) or None,
        **{f"s{i}": copy.deepcopy(f) for i, f in enumerate(files)},
    )
    loaded = load(folder)
    assert [p for p in loaded.problems if not p.warning] == []
    assert len(loaded.targets) == len(files) and loaded.failed == []
    assert (
        validate(plain(loaded.document), "policy.schema.json", Source("f", plain(loaded.document)))
        == []
    )


def test_one_server_in_two_files_fails_the_second_naming_the_first(tmp_path):
    """Ids are unique on each cloud, so the same id twice is a copied file left unchanged;
    the same id on the other cloud is another server."""
    loaded = load(layout(tmp_path, a=server(), b=server(name="other"), c=server("hetzner")))
    assert [t.name for t in loaded.targets] == ["a", "c"]
    assert [str(p) for p in loaded.problems if not p.warning] == [
        f"{tmp_path / 'configs' / 'b.json'}: digitalocean_droplet.id: server 3164444 is also "
        f"configured in {tmp_path / 'configs' / 'a.json'}; give each server one file"
    ]
    assert [f.target for f in loaded.failed] == ["b"]


# -- issue 21, item 1: server files given without --config -----------------------------------


def beside(cwd: Path, *args: str) -> legacy.Beside:
    return legacy.config_beside(args, cwd)


def test_server_files_without_config_take_the_snapshots_config_above_their_configs_dir(
    tmp_path, monkeypatch
):
    """`cd /opt/snapshots && … apply configs/web.json`, bare names, and from inside configs/:
    each finds the folder's snapshots.config, as snapshots.py read the one beside itself."""
    layout(tmp_path, web=server(), db=server("hetzner", id=4711))
    monkeypatch.chdir(tmp_path)
    for cwd, args in (
        (Path("."), ("configs/web.json", "configs/db.json")),
        (Path("."), ("web.json", "db")),
        (Path("configs"), ("web.json",)),
        (tmp_path / "configs", ("web.json",)),
        (Path("/"), (str(tmp_path / "configs" / "web.json"),)),
    ):
        found = beside(cwd, *args)
        assert found.config_file is not None, (cwd, args)
        assert found.config_file.resolve() == tmp_path / "snapshots.config"
        assert found.problems == ()
        assert found.note.startswith(f"settings from {found.config_file}: server files given")
    assert beside(Path("."), "configs/web.json").config_file == Path("snapshots.config")
    monkeypatch.chdir(tmp_path / "configs")
    assert beside(Path("."), "web.json").config_file == Path("../snapshots.config")


def test_the_snapshots_config_beside_the_files_comes_first(tmp_path):
    layout(tmp_path, web=server())
    (tmp_path / "configs" / "snapshots.config").write_text("[TIMING]\ndelay_between_servers = 1\n")
    assert beside(tmp_path, "configs/web.json").config_file == (
        tmp_path / "configs" / "snapshots.config"
    )


def test_a_custom_configs_dir_is_followed_and_a_folder_that_is_not_it_is_not_claimed(tmp_path):
    (tmp_path / "snapshots.config").write_text("[DIRECTORIES]\nconfigs_dir = servers\n")
    for folder in ("servers", "other"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "web.json").write_text(json.dumps(server()))
    assert beside(tmp_path, "web.json").config_file == tmp_path / "snapshots.config"
    assert beside(tmp_path, "servers/web.json").config_file == tmp_path / "snapshots.config"
    # other/ is not this folder's configs_dir: run from there, its files are someone else's
    assert beside(tmp_path / "other", "web.json").config_file is None


def test_a_file_from_no_snapshots_py_folder_takes_the_current_folders_snapshots_config(
    tmp_path,
):
    """`cd /opt/snapshots && python3 snapshots.py /elsewhere/test.json` read the config there."""
    layout(tmp_path, web=server())
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "test.json").write_text(json.dumps(server()))
    found = beside(tmp_path, "elsewhere/test.json")
    assert found.config_file == tmp_path / "snapshots.config"
    assert "in the current folder: the server files' own folder has no" in found.note
    # a file that belongs to a folder keeps that folder's, wherever the run starts
    (tmp_path / "elsewhere" / "snapshots.config").write_text("[TIMING]\n")
    assert beside(tmp_path, "elsewhere/test.json").config_file == (
        tmp_path / "elsewhere" / "snapshots.config"
    )


def test_files_of_two_snapshots_py_folders_are_refused_naming_both(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        layout(tmp_path / folder, web=server())
    with pytest.raises(legacy.MixedFolders) as raised:
        beside(tmp_path, "a/configs/web.json", "b/configs/web.json")
    message = str(raised.value)
    assert "a/snapshots.config for a/configs/web.json" in message
    assert "b/snapshots.config for b/configs/web.json" in message
    assert "--config" in message


def test_without_a_snapshots_config_the_defaults_apply_and_a_snapshots_py_folder_is_warned(
    tmp_path,
):
    layout(tmp_path, ini=None, web=server())
    found = beside(tmp_path, "configs/web.json")
    assert found.config_file is None and found.problems == ()
    assert found.note.startswith("no snapshots.config beside the server files")
    (tmp_path / "logs").mkdir()  # what snapshots.py leaves in its folder
    [warning] = beside(tmp_path, "configs/web.json", "configs/web.json").problems
    assert (warning.file, warning.warning, warning.loud) == (str(tmp_path), True, False)
    assert "looks like a snapshots.py folder, but no snapshots.config" in str(warning)
    assert "give --config FILE" in str(warning)


def test_a_missing_server_file_is_left_to_the_loader_to_report(tmp_path):
    layout(tmp_path, web=server())
    found = beside(tmp_path, "nope.json", "configs/web.json")
    assert found.config_file == tmp_path / "snapshots.config"
    assert beside(tmp_path, "nope.json").config_file is None


def test_without_a_snapshots_config_the_warning_says_none_was_read(tmp_path):
    layout(tmp_path, ini=None, web=server(telegram={"enabled": True}))
    [problem] = load(tmp_path).problems
    assert "no bot_token and chat_id here or in a snapshots.config (none was read)" in str(problem)


def loaded_from(cwd: Path, *args: str):
    """What `cd CWD && snapshot-policy … ARGS` loads (server files without --config)."""
    from snapshot_policy import config

    return config.load(None, None, args, cwd=cwd, env={})


def test_without_a_snapshots_config_the_defaults_and_owner_are_the_files_folders(tmp_path):
    """Two cron lines run from different folders share one lock and one owner, as snapshots.py
    kept logs/ in its own folder wherever it was started from."""
    (tmp_path / "snap").mkdir()
    snap = layout(tmp_path / "snap", ini=None, web=server())
    (tmp_path / "x").mkdir()
    owner = policy.location_owner(snap)
    for cwd, arg in (
        (tmp_path / "x", str(snap / "configs" / "web.json")),
        (Path("/"), str(snap / "configs" / "web.json")),
        (tmp_path / "x", "../snap/configs/web.json"),
        (snap / "configs", "web.json"),  # from inside configs/: the folder above, not configs/
    ):
        found = beside(cwd, arg)
        assert found.config_file is None and found.home is not None, (cwd, arg)
        assert found.home.resolve() == snap
        assert f"apply (logs/ in {found.home}, no global notifications)" in found.note
        loaded = loaded_from(cwd, arg)
        assert loaded.settings.owner == owner, (cwd, arg)
        assert Path(loaded.settings.lock_file).resolve() == snap / "logs" / "snapshots.lock"
        assert Path(loaded.settings.log_file).resolve() == snap / "logs" / "snapshots.log"
        assert loaded.base.resolve() == snap
        assert [t.name for t in loaded.targets] == ["web"] and not loaded.errors
    # files beside no configs/ belong to their own folder
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "db.json").write_text(json.dumps(server()))
    assert beside(tmp_path / "x", str(tmp_path / "loose" / "db.json")).home == tmp_path / "loose"


def test_the_cron_line_run_from_the_folder_itself_keeps_its_base_and_owner(tmp_path, monkeypatch):
    """`cd /opt/snapshots && snapshot-policy apply configs/web.json`: the base was the current
    folder, and stays it, so the owner of the snapshots it made does not change."""
    snap = layout(tmp_path, ini=None, web=server(), db=server("hetzner", id=4711))
    monkeypatch.chdir(snap)
    owner = policy.location_owner(snap)
    for cwd, args in (
        (Path("."), ("configs/web.json", "configs/db.json")),
        (Path("."), ("web.json",)),
        (snap, ("configs/web.json",)),
        (snap, (str(snap / "configs" / "web.json"),)),
    ):
        assert beside(cwd, *args).home is None, (cwd, args)
        loaded = loaded_from(cwd, *args)
        assert loaded.settings.owner == owner
        assert loaded.base == cwd
    assert loaded_from(Path("."), "configs/web.json").settings.lock_file == "logs/snapshots.lock"
    # nor does a file in another subfolder of the current one, nor files of two folders
    (snap / "other").mkdir()
    (snap / "other" / "x.json").write_text(json.dumps(server(id="1")))
    assert beside(Path("."), "other/x.json").home is None
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "y.json").write_text(json.dumps(server(id="2")))
    assert beside(snap / "other", "x.json", "../elsewhere/y.json").home is None
    assert loaded_from(snap / "other", "x.json", "../elsewhere/y.json").base == snap / "other"


def test_a_linked_configs_folder_finds_the_snapshots_config_of_the_folder_it_points_into(
    tmp_path,
):
    """`~/cfg -> /opt/snapshots/configs`, `apply ~/cfg/web.json`: the folder as written has
    no snapshots.config, so the one the link leads into is taken."""
    (tmp_path / "snap").mkdir()
    snap = layout(tmp_path / "snap", web=server())
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "cfg").symlink_to(snap / "configs")
    found = beside(tmp_path / "home", "cfg/web.json")
    assert found.config_file == snap / "snapshots.config"
    loaded = loaded_from(tmp_path / "home", "cfg/web.json")
    assert loaded.settings.owner == policy.location_owner(snap)
    assert loaded.settings.lock_file == str(snap / "var" / "logs" / "snapshots.lock")
    # without a snapshots.config, the link's folder is still the base
    (snap / "snapshots.config").unlink()
    found = beside(tmp_path / "home", "cfg/web.json")
    assert found.config_file is None and found.home == snap
    assert loaded_from(tmp_path / "home", "cfg/web.json").settings.owner == (
        policy.location_owner(snap)
    )


# -- issue 21, item 7: an unknown INI section ---------------------------------------------------


def test_an_unknown_section_is_a_loud_warning_and_the_rest_of_the_ini_applies(tmp_path):
    """snapshots.py's configparser ignored a section it did not know: so do we, but say so."""
    ini = INI + "\n[TIMNG]\ndelay_between_servers = 1\n\n[EXTRA]\nanything = at all\n"
    loaded = load(layout(tmp_path, ini, web=server()))
    timng = INI.count("\n") + 2
    assert [(p.line, p.path, p.message, p.warning, p.loud) for p in loaded.problems] == [
        (
            timng,
            "TIMNG",
            "unknown section [TIMNG] (did you mean [TIMING]?); its keys are ignored, "
            "as snapshots.py ignored them",
            True,
            True,
        ),
        (
            timng + 3,
            "EXTRA",
            "unknown section [EXTRA]; its keys are ignored, as snapshots.py ignored them",
            True,
            True,
        ),
    ]
    assert loaded.failed == [] and [t.name for t in loaded.targets] == ["web"]
    assert loaded.settings.delay_between_servers == 20  # [TIMING], not [TIMNG]
    [telegram] = loaded.targets[0].notify
    assert telegram.chat_id == "-100"


def test_an_unknown_key_in_a_known_section_stays_an_error(tmp_path):
    loaded = load(layout(tmp_path, "[TIMING]\ndelay_betwen_servers = 1\n", web=server()))
    [problem] = [p for p in loaded.problems if not p.warning]
    assert "unknown key 'delay_betwen_servers'; did you mean 'delay_between_servers'?" in str(
        problem
    )


# -- issue 21, item 6: the old script's creation timeout ---------------------------------------


def test_a_legacy_layout_waits_snapshots_pys_900_s_for_a_snapshot_and_a_policy_3600(tmp_path):
    """snapshots.py waited 900 s unless [TIMING] said otherwise; a policy keeps its own."""
    layout(tmp_path, "[LOGGING]\nlevel = INFO\n", web=server())
    assert load(tmp_path).settings.snapshot_creation_timeout == 900
    assert load(tmp_path).document["settings"]["snapshot_creation_timeout"] == 900
    (tmp_path / "snapshots.config").write_text("[TIMING]\nsnapshot_creation_timeout = 120\n")
    assert load(tmp_path).settings.snapshot_creation_timeout == 120
    assert policy.settings({}, tmp_path).snapshot_creation_timeout == 3600
