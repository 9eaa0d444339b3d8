"""A snapshots.py layout, unchanged, validated and planned against the sandbox (issue: config)."""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from snapshot_policy import config
from snapshot_policy.cli import main
from snapshot_policy.config.migrate import migrate
from snapshot_policy.core.model import TelegramChannel, WebhookChannel
from snapshot_policy.core.reconcile import build_plan
from snapshot_policy.edges.providers import connect
from snapshot_policy.engine.observe import observe
from snapshot_policy.output import planfile
from tests.e2e.cloud import DO_TOKEN, HZ_TOKEN, legacy_name, unwrapped
from tests.integration.test_notify_webhook import aliased, loopback_alias


def plan_document(loaded, now):
    observation = observe(loaded.targets, connect)
    return planfile.plan_document(build_plan(observation.observed, now), observation.failures)


def test_legacy_layout_validates(legacy_layout, monkeypatch, capsys, clock):
    monkeypatch.chdir(legacy_layout)
    assert main(["validate"], clock=clock) == 0
    assert "3 file(s) valid: 2 target(s)." in capsys.readouterr().out


def test_legacy_layout_loads_the_servers_templates_and_retention_the_old_script_used(legacy_layout):
    loaded = config.load(cwd=legacy_layout)
    web, db = loaded.targets
    # A target is its server file; the server's name is the one in the file.
    assert (
        web.name,
        web.server_name,
        web.account.provider,
        web.selector.ids,
        web.retention.keep_last,
    ) == ("digitalocean_droplet1", "web-1", "digitalocean", ("3164444",), 3)
    assert (
        db.name,
        db.server_name,
        db.account.provider,
        db.selector.ids,
        db.retention.keep_last,
    ) == ("hetzner_cloud_server1", "db-1", "hetzner", ("4711",), 2)
    assert (web.source, db.source) == (
        str(legacy_layout / "configs" / "digitalocean_droplet1.json"),
        str(legacy_layout / "configs" / "hetzner_cloud_server1.json"),
    )
    assert web.adopt_legacy_names and db.adopt_legacy_names
    # The server file's placeholders count as unset, so the global Telegram settings apply,
    # with the INI's \n escapes turned into line breaks.
    [telegram] = web.notify
    assert isinstance(telegram, TelegramChannel) and telegram.chat_id == "-1001234567890"
    assert (
        telegram.message_success
        == "*OK* `{server_name}`\nsnapshot `{snapshot_name}`\n{snapshot_info}"
    )
    webhook = next(c for c in db.notify if isinstance(c, WebhookChannel))
    assert webhook.payload_success == {"server": "{server_name}", "total": "{total_snapshots}"}
    assert loaded.settings.lock_file == str(legacy_layout / "logs" / "snapshots.lock")
    assert loaded.settings.delay_between_servers == 20


def test_legacy_plan_adopts_old_snapshots_keeps_exactly_n_and_writes_nothing(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    monkeypatch.chdir(legacy_layout)
    sandbox.clear_requests()
    assert main(["plan", "--output", "json"], clock=clock) == 0
    document = json.loads(capsys.readouterr().out)
    web = next(t for t in document["targets"] if t["target"] == "digitalocean_droplet1")
    assert web["create"]["name"].startswith("web-1-")
    assert [s["name"] for s in web["keep"]] == [legacy_name("web-1", clock.now, d) for d in (1, 2)]
    assert [s["name"] for s in web["delete"]] == [
        legacy_name("web-1", clock.now, d) for d in (3, 4, 5)
    ]
    assert [(s["name"], s["reason"].split(":")[0]) for s in web["skip"]] == [
        ("web-1-before-upgrade", "unmanaged")
    ]
    db = next(t for t in document["targets"] if t["target"] == "hetzner_cloud_server1")
    assert len(db["keep"]) == 1 and len(db["delete"]) == 4
    assert [s["name"] for s in db["skip"]] == ["db-1-manual"]
    assert {r["method"] for r in sandbox.requests()} == {"GET"}


def test_migrated_policy_plans_identically_to_its_legacy_source(
    legacy_layout, sandbox, tmp_path, clock
):
    legacy = config.load(cwd=legacy_layout)
    migration = migrate(legacy.document, legacy.base)
    policy = legacy_layout / "snapshot-policy.yaml"
    policy.write_text(migration.text)
    env = {"DIGITALOCEAN_TOKEN_1": DO_TOKEN, "HCLOUD_TOKEN_1": HZ_TOKEN, "TELEGRAM_BOT_TOKEN": "x"}
    migrated = config.load(policy=policy, env={**env, **{k: v for k, v in sandbox.env().items()}})
    assert migrated.errors == ()
    assert plan_document(migrated, clock.now) == plan_document(legacy, clock.now)
    assert DO_TOKEN not in migration.text and HZ_TOKEN not in migration.text
    assert [line.split("=")[0] for line in migration.exports] == [
        "export DIGITALOCEAN_TOKEN_1",
        "export HCLOUD_TOKEN_1",
        "export TELEGRAM_BOT_TOKEN",
    ]


def test_migrate_command_prints_yaml_and_the_variables_to_export(
    legacy_layout, monkeypatch, capsys, clock
):
    monkeypatch.chdir(legacy_layout)
    assert main(["migrate"], clock=clock) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("# snapshot-policy policy, migrated")
    assert "token: env:DIGITALOCEAN_TOKEN_1" in captured.out
    assert "export HCLOUD_TOKEN_1=...  # the api_token of" in captured.err
    assert DO_TOKEN not in captured.out + captured.err


def test_one_broken_server_file_fails_alone(legacy_layout, sandbox, monkeypatch, capsys, clock):
    (legacy_layout / "configs" / "broken.json").write_text(
        '{"digitalocean_droplet": {"provider": "digitalocean"}}'
    )
    monkeypatch.chdir(legacy_layout)
    assert main(["plan"], clock=clock) == 1
    captured = capsys.readouterr()
    assert "broken.json" in captured.err and "missing required key" in captured.err
    assert "+ create web-1-" in captured.out and "+ create db-1-" in captured.out
    assert "FAILED" in captured.out


def test_positional_files_are_bare_names_in_configs_dir_or_paths(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    monkeypatch.chdir(legacy_layout)
    assert (
        main(["plan", "--config", "snapshots.config", "hetzner_cloud_server1.json"], clock=clock)
        == 0
    )
    out = capsys.readouterr().out
    assert "db-1" in out and "web-1" not in out
    assert main(["plan", "configs/digitalocean_droplet1.json"], clock=clock) == 0
    assert "web-1" in capsys.readouterr().out
    assert main(["plan", "--config", "snapshots.config", "nope"], clock=clock) == 1
    assert "nope: no such server file" in capsys.readouterr().err


def test_legacy_notifications_follow_server_then_global_then_default(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    """web-1's file has only placeholders, so the INI's template applies (its \\n are line
    breaks); db-1's file sets its own webhook payload and takes Telegram from the INI."""
    server = json.loads((legacy_layout / "configs" / "hetzner_cloud_server1.json").read_text())
    server["hetzner_cloud_server"]["webhook"]["url"] = sandbox.webhook_url("legacy")
    (legacy_layout / "configs" / "hetzner_cloud_server1.json").write_text(json.dumps(server))
    monkeypatch.chdir(legacy_layout)
    assert main(["apply"], clock=clock) == 0
    texts = sorted(m["text"] for m in sandbox.telegram_messages())
    assert len(texts) == 2
    web_text = next(t for t in texts if "web-1" in t)
    assert re.fullmatch(r"\*OK\* `web-1`\nsnapshot `web-1-\d{14}`\n3 snapshots exist", web_text), (
        web_text
    )
    assert all(
        m["parse_mode"] == "Markdown" and str(m["chat_id"]) == "-1001234567890"
        for m in sandbox.telegram_messages()
    )
    [payload] = [d["json"] for d in sandbox.webhook_deliveries("legacy")]
    assert payload == {"server": "db-1", "total": "2"}  # a string, as snapshots.py sent it


def test_a_legacy_http_webhook_is_sent_with_a_warning_in_validate_plan_and_apply(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    """snapshots.py posted to plain http (an n8n on the LAN): so does the tool, saying so on
    stderr without -v, and showing scheme://host:port only (issue 21, item 2). The "other
    host" is a name for this machine: no test sends a byte off it."""
    name = loopback_alias()
    if name is None:
        pytest.skip("no host name here resolves to loopback only")
    for variable in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(variable, raising=False)
    url = aliased(sandbox.webhook_url("lan"), name) + "?token=abc"
    server_file = legacy_layout / "configs" / "hetzner_cloud_server1.json"
    server_file.write_text(server_file.read_text().replace("https://hooks.example.com/snap", url))
    monkeypatch.chdir(legacy_layout)
    warning = (
        "hetzner_cloud_server1.json: hetzner_cloud_server.webhook.url: "
        f"http://{name}:{urlsplit(url).port}/… is plain http"
    )
    for command in ("validate", "plan", "apply"):
        assert main([command], clock=clock) == 0, command
        err = unwrapped(capsys.readouterr().err)
        assert warning in err, (command, err)
        assert "token=abc" not in err and "/hooks/lan" not in err
    assert [d["json"]["server"] for d in sandbox.webhook_deliveries("lan")] == ["db-1"]


# -- issue 14, item 3: one folder, two formats ------------------------------------------------

COMING_FROM_SNAPSHOTS_PY = (
    (Path(__file__).resolve().parents[2] / "README.md")
    .read_text()
    .split("## Coming from snapshots.py", 1)[1]
    .split("\n## ", 1)[0]
)


def readme_command(pattern: str) -> list[str]:
    """The arguments of the `snapshot-policy …` command that `pattern` finds in the README's
    section for snapshots.py users, in a code block."""
    found = re.search(
        rf"^[^`\n]*snapshot-policy ({pattern}[^>\n`]*)",
        COMING_FROM_SNAPSHOTS_PY,
        flags=re.MULTILINE,
    )
    assert found, pattern
    return found.group(1).split()


def test_the_readme_cron_line_and_migrate_command_are_the_ones_run_here(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    cron, migrate_command = readme_command("apply"), readme_command("migrate")
    assert cron == ["apply", "--config", "snapshots.config"] and migrate_command == [
        "migrate",
        "--out",
        "snapshot-policy.yaml",
    ]
    server_file = legacy_layout / "configs" / "hetzner_cloud_server1.json"
    server_file.write_text(
        server_file.read_text().replace(
            "https://hooks.example.com/snap", sandbox.webhook_url("legacy")
        )
    )
    monkeypatch.chdir(legacy_layout)
    assert main(migrate_command, clock=clock) == 0
    err = capsys.readouterr().err
    policy = legacy_layout / "snapshot-policy.yaml"
    assert (
        policy.read_text().startswith("# snapshot-policy policy, migrated")
        and stat.S_IMODE(policy.stat().st_mode) == 0o600
    )
    assert (
        "Wrote snapshot-policy.yaml: 2 target(s)." in err
        and "export DIGITALOCEAN_TOKEN_1=...  # the api_token of" in err
    )
    assert (
        "Then run with --policy snapshot-policy.yaml." in err and "--config snapshots.config" in err
    )
    assert DO_TOKEN not in policy.read_text() + err
    # The cron line names its layout, so the policy beside it changes nothing; a bare command asks.
    assert main(cron, clock=clock) == 0
    capsys.readouterr()
    assert main(["apply"], clock=clock) == 1
    assert "both snapshot-policy.yaml and snapshots.config are here" in capsys.readouterr().err


def test_both_formats_in_one_folder_refuse_to_guess_naming_both_and_the_options(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    monkeypatch.chdir(legacy_layout)
    (legacy_layout / "snapshot-policy.yaml").write_text(
        ""
    )  # what `migrate > snapshot-policy.yaml` leaves when it fails
    # migrate names its own way out (tests/e2e/test_migrate_out.py).
    for command in (["validate"], ["plan"], ["apply"]):
        assert main(command, clock=clock) == 1, command
        err = capsys.readouterr().err
        assert (
            "both snapshot-policy.yaml and snapshots.config are here: "
            "give --policy snapshot-policy.yaml to use the YAML policy, "
            "or --config snapshots.config to keep the snapshots.py layout; "
            "the tool will not guess which. "
            "snapshot-policy.yaml is empty, as `migrate > snapshot-policy.yaml` leaves it: "
            "remove it and run "
            "`snapshot-policy migrate --out snapshot-policy.yaml`"
        ) in err, err
        assert "the file is empty" not in err
    assert [s["name"] for s in sandbox.dump_state()["snapshots"] if s["created"] == clock.now] == []
    assert main(["plan", "--config", "snapshots.config"], clock=clock) == 0
    assert "+ create web-1-" in capsys.readouterr().out
    assert (
        main(
            ["migrate", "--config", "snapshots.config", "--out", "snapshot-policy.yaml"],
            clock=clock,
        )
        == 0
    )
    assert "version: 1" in (legacy_layout / "snapshot-policy.yaml").read_text()


def test_a_policy_beside_server_files_without_snapshots_config_asks_too(
    legacy_layout, monkeypatch, capsys, clock
):
    (legacy_layout / "snapshots.config").unlink()
    (legacy_layout / "snapshot-policy.yaml").write_text("version: 1\n")
    monkeypatch.chdir(legacy_layout)
    assert main(["validate"], clock=clock) == 1
    err = capsys.readouterr().err
    assert "both snapshot-policy.yaml and configs/*.json are here" in err
    assert "or the server files as arguments (configs/*.json)" in err and "is empty" not in err


def test_migrate_out_refuses_a_symbolic_link_and_writes_nothing(
    legacy_layout, monkeypatch, capsys, clock
):
    monkeypatch.chdir(legacy_layout)
    victim = legacy_layout / "victim.txt"
    victim.write_text("keep me")
    (legacy_layout / "policy.yaml").symlink_to(victim)
    assert main(["migrate", "--out", "policy.yaml"], clock=clock) == 1
    assert "cannot use policy file policy.yaml: it is a symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "keep me" and (legacy_layout / "policy.yaml").is_symlink()


def test_migrate_out_in_another_folder_keeps_the_paths_pointing_where_they_did(
    legacy_layout, monkeypatch, capsys, clock
):
    monkeypatch.chdir(legacy_layout)
    assert main(["migrate", "--out", "new/policy.yaml"], clock=clock) == 0
    assert "This folder now holds both formats" not in capsys.readouterr().err
    env = {"DIGITALOCEAN_TOKEN_1": DO_TOKEN, "HCLOUD_TOKEN_1": HZ_TOKEN, "TELEGRAM_BOT_TOKEN": "x"}
    migrated = config.load(policy=Path("new/policy.yaml"), env=env)
    legacy = config.load(legacy_config=Path("snapshots.config"))
    assert migrated.errors == ()
    assert Path(migrated.settings.lock_file).resolve() == Path(legacy.settings.lock_file).resolve()
    assert Path(migrated.settings.log_file).resolve() == Path(legacy.settings.log_file).resolve()


def test_migrate_prints_integers_blocks_and_one_variable_per_secret(
    legacy_layout, monkeypatch, capsys, clock
):
    """The fixture's INI template has \\n escapes: a block in the policy; its timeouts stay whole
    numbers."""
    monkeypatch.chdir(legacy_layout)
    assert main(["migrate"], clock=clock) == 0
    out = capsys.readouterr().out
    assert (
        "    message_success: |-\n      *OK* `{server_name}`\n"
        "      snapshot `{snapshot_name}`\n      {snapshot_info}\n"
    ) in out
    assert (
        "    timeout: 10\n" in out and "10.0" not in out and "  delay_between_servers: 20\n" in out
    )
    assert out.count("bot_token: env:TELEGRAM_BOT_TOKEN") == 1 and "server_name: web-1" in out


def test_migrate_with_target_migrates_that_server_only(legacy_layout, monkeypatch, capsys, clock):
    monkeypatch.chdir(legacy_layout)
    assert main(["migrate", "--target", "hetzner_cloud_server1"], clock=clock) == 0
    captured = capsys.readouterr()
    assert "name: hetzner_cloud_server1" in captured.out and "digitalocean" not in captured.out
    assert "DIGITALOCEAN_TOKEN" not in captured.err and "export HCLOUD_TOKEN_1=" in captured.err


# -- issue 21, item 1: server files as arguments keep their folder's snapshots.config ---------


def _webhook_to_sandbox(legacy_layout, sandbox) -> None:
    server_file = legacy_layout / "configs" / "hetzner_cloud_server1.json"
    server_file.write_text(
        server_file.read_text().replace(
            "https://hooks.example.com/snap", sandbox.webhook_url("legacy")
        )
    )


def test_server_files_as_arguments_take_the_folders_snapshots_config(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    """The old README's usage with only the program changed: its Telegram settings, its log
    and its lock are those of snapshots.config, and the log says where they came from."""
    _webhook_to_sandbox(legacy_layout, sandbox)
    monkeypatch.chdir(legacy_layout)
    args = ["configs/digitalocean_droplet1.json", "configs/hetzner_cloud_server1.json"]
    assert main(["apply", *args], clock=clock) == 0
    assert "snapshots.py folder" not in capsys.readouterr().err
    texts = [m["text"] for m in sandbox.telegram_messages()]
    assert len(texts) == 2 and all(t.startswith("*OK* `") for t in texts), texts
    assert all(str(m["chat_id"]) == "-1001234567890" for m in sandbox.telegram_messages())
    assert [d["json"]["server"] for d in sandbox.webhook_deliveries("legacy")] == ["db-1"]
    log = (legacy_layout / "logs" / "snapshots.log").read_text()
    assert (
        "| INFO     | settings from snapshots.config: server files given without --config take the "
        "snapshots.config of their folder, as snapshots.py did"
    ) in log
    loaded = config.load(None, None, args)
    assert loaded.settings.lock_file == "logs/snapshots.lock"
    assert loaded.settings.delay_between_servers == 20


def test_bare_names_and_a_run_from_inside_configs_share_the_folders_lock(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    """One folder, one lock: a run that names its files is refused while the folder's cron
    run holds it, wherever it was started from."""
    from snapshot_policy.state.runlock import run_lock

    lock = legacy_layout / "logs" / "snapshots.lock"
    lock.parent.mkdir()
    for where, args in (
        (legacy_layout, ["digitalocean_droplet1.json"]),
        (legacy_layout / "configs", ["digitalocean_droplet1.json"]),
        (Path("/"), [str(legacy_layout / "configs" / "digitalocean_droplet1.json")]),
    ):
        monkeypatch.chdir(where)
        with run_lock(str(lock)):
            assert main(["apply", *args], clock=clock) == 3, where
        assert "snapshots.lock" in capsys.readouterr().err
    assert sandbox.telegram_messages() == []


def test_server_files_without_a_snapshots_config_warn_with_v_in_a_snapshots_py_folder(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    (legacy_layout / "snapshots.config").unlink()
    for server_file in (legacy_layout / "configs").iterdir():
        server_file.chmod(0o600)  # no other warning
    monkeypatch.chdir(legacy_layout)
    assert main(["validate", "configs/digitalocean_droplet1.json"], clock=clock) == 0
    assert capsys.readouterr().err == ""  # nothing says this was a snapshots.py folder
    (legacy_layout / "logs").mkdir()
    assert main(["validate", "configs/digitalocean_droplet1.json"], clock=clock) == 0
    # The tool makes logs/ itself: a valid layout without snapshots.config stays quiet in cron.
    assert capsys.readouterr().err == ""
    assert main(["validate", "-v", "configs/digitalocean_droplet1.json"], clock=clock) == 0
    err = unwrapped(capsys.readouterr().err)
    assert f"warning: {legacy_layout}: looks like a snapshots.py folder" in err
    assert "give --config FILE" in err
    assert main(["plan", "-v", "configs/digitalocean_droplet1.json"], clock=clock) == 0
    assert "INFO no snapshots.config beside the server files" in capsys.readouterr().err


def test_server_files_of_two_snapshots_py_folders_are_refused(
    legacy_layout, tmp_path_factory, monkeypatch, capsys, clock
):
    other = tmp_path_factory.mktemp("other")
    (other / "snapshots.config").write_text("[TIMING]\ndelay_between_servers = 1\n")
    (other / "web.json").write_text(
        (legacy_layout / "configs" / "digitalocean_droplet1.json").read_text()
    )
    monkeypatch.chdir(legacy_layout)
    assert main(["validate", "hetzner_cloud_server1.json", str(other / "web.json")]) == 1
    err = capsys.readouterr().err
    assert "the server files belong to different snapshots.py folders" in err
    assert "Traceback" not in err


# -- issue 21, item 7: an unknown INI section --------------------------------------------------


def test_an_unknown_ini_section_warns_at_default_verbosity_and_the_run_goes_on(
    legacy_layout, sandbox, monkeypatch, capsys, clock
):
    ini = legacy_layout / "snapshots.config"
    line = ini.read_text().count("\n") + 2
    ini.write_text(ini.read_text() + "\n[TIMNG]\ndelay_between_servers = 1\n")
    monkeypatch.chdir(legacy_layout)
    assert main(["apply"], clock=clock) == 0
    err = unwrapped(capsys.readouterr().err)
    assert (
        f"warning: snapshots.config:{line}: TIMNG: unknown section [TIMNG] "
        "(did you mean [TIMING]?); "
        "its keys are ignored, as snapshots.py ignored them"
    ) in err
    assert len(sandbox.telegram_messages()) == 2


def test_an_unknown_top_level_key_in_a_policy_stays_an_error(tmp_path, capsys, clock):
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text("version: 1\nsetings: {}\naccounts: {}\ntargets: []\n")
    assert main(["validate", "--policy", str(policy)], clock=clock) == 1
    assert "unknown key 'setings'; did you mean 'settings'?" in capsys.readouterr().err


def test_without_a_snapshots_config_a_run_from_elsewhere_locks_and_logs_in_the_files_folder(
    legacy_layout, sandbox, tmp_path_factory, monkeypatch, capsys, clock
):
    """`cd /tmp/x && snapshot-policy apply /opt/snap/configs/web.json` takes the lock and the log
    of /opt/snap, as snapshots.py did, so a cron line run from elsewhere and one run from the
    folder exclude each other and count the same snapshots as their own."""
    from snapshot_policy.state.runlock import run_lock

    (legacy_layout / "snapshots.config").unlink()
    elsewhere = tmp_path_factory.mktemp("x")
    server_file = str(legacy_layout / "configs" / "hetzner_cloud_server1.json")
    monkeypatch.chdir(elsewhere)
    assert main(["apply", server_file], clock=clock) == 0
    assert (legacy_layout / "logs" / "snapshots.lock").exists()
    log = (legacy_layout / "logs" / "snapshots.log").read_text()
    assert "| INFO     | no snapshots.config" in log  # snapshots.py's log line shape (item 4)
    assert list(elsewhere.iterdir()) == []
    from_elsewhere = config.load(None, None, [server_file]).settings.owner
    monkeypatch.chdir(legacy_layout)
    assert config.load(None, None, ["configs/hetzner_cloud_server1.json"]).settings.owner == (
        from_elsewhere
    )
    with run_lock(str(legacy_layout / "logs" / "snapshots.lock")):
        monkeypatch.chdir(elsewhere)
        assert main(["apply", server_file], clock=clock) == 3
    assert "snapshots.lock" in capsys.readouterr().err
