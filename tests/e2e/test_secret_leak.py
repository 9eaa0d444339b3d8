"""docs/promises.md §5 invariant 8 end to end: distinctive secrets never leave the configuration.

Each scenario runs the CLI against the sandbox with a DigitalOcean token, a Hetzner token, a
Telegram bot token and a webhook signing secret that appear nowhere else, then searches for
each of them — whole, and a distinctive piece of it — in stdout, stderr, every file the run
left (log, audit log, journal, JSON report, metrics textfile, saved plan), every Telegram
message and webhook delivery (headers and body) the sandbox received, the sandbox's request
log, and migrate's output — verbatim, and with whitespace and its escapes taken out, so a
secret shown with a line break (or `\\n`) around or inside it counts as shown.

Issue 12: secrets given with whitespace around them (a token exported from a file ends in a
line break) are trimmed and work; whitespace inside is a configuration error naming the key,
never the value; a secret that reaches the output anyway (here: inside a server's name) is
masked in every stream and file; a config file holding a secret literally and readable by
others is warned about, as ssh does.

Issue 19: a token a hook prints folded over lines, or in part, leaves no 12-character piece of
itself anywhere.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from snapshot_policy.cli import main
from snapshot_policy.sandbox import Sandbox
from tests.e2e.cloud import HZ_TOKEN, daily
from tests.e2e.cloud import cloud as base_cloud
from tests.e2e.policies import DEBUG_LOG, NIGHTLY, policy_yaml

DO_SECRET = "dop_v1_" + "LEAKdoTOKEN7f3a9c" + "0" * 40 + "d1"
HZ_SECRET = "LEAKhzTOKENq8Zr2W" + "x" * 44 + "h2"
BOT_SECRET = "6021234567:AA" + "LEAKbotTOKENs9Pk" + "y" * 19
HOOK_SECRET = "LEAKhookSECRETm4Tq-webhook-signing-key"
SECRETS = {
    "DigitalOcean token": DO_SECRET,
    "Hetzner token": HZ_SECRET,
    "Telegram bot token": BOT_SECRET,
    "webhook secret": HOOK_SECRET,
}
PIECES = {
    "DigitalOcean token": "LEAKdoTOKEN7f3a9c",
    "Hetzner token": "LEAKhzTOKENq8Zr2W",
    "Telegram bot token": "LEAKbotTOKENs9Pk",
    "webhook secret": "LEAKhookSECRETm4Tq",
}


def leaky(hook_url: str) -> str:
    """The usual policy with every secret one of the above, read from the environment, and a
    Telegram chat and a signed webhook at `hook_url` to tell of each target."""
    return policy_yaml(
        accounts={
            "do": {"provider": "digitalocean", "token": "env:LEAK_DO_TOKEN"},
            "hz": {"provider": "hetzner", "token": "env:LEAK_HZ_TOKEN"},
        },
        notifications={
            "tg": {
                "type": "telegram",
                "bot_token": "env:LEAK_BOT_TOKEN",
                "chat_id": "-1001234567890",
                "timeout": 1,
                "retries": 0,
            },
            "hook": {
                "type": "webhook",
                "url": hook_url,
                "secret": "env:LEAK_HOOK_SECRET",
                "timeout": 1,
                "retries": 0,
            },
        },
        defaults={**NIGHTLY, "notify": ["tg", "hook"]},
        settings={**DEBUG_LOG, "audit_log": "run/audit.jsonl", "request_timeout": 2},
    )


def cloud(now) -> dict:
    return {
        "accounts": [
            {"name": "do", "provider": "digitalocean", "tokens": [DO_SECRET]},
            {"name": "hz", "provider": "hetzner", "tokens": [HZ_SECRET]},
        ],
        "servers": [
            {"account": "do", "id": 3164444, "name": "web-1"},
            {"account": "hz", "id": 4711, "name": "db-1"},
        ],
        "snapshots": [
            *daily("do", 3164444, "web-1", now),
            *daily("hz", 4711, "db-1", now),
        ],
        "telegram": {"bots": [{"token": BOT_SECRET, "username": "leak_bot"}]},
    }


@pytest.fixture
def sandbox(monkeypatch, clock):
    with Sandbox(cloud(clock.now), action_seconds=0.05, clock=clock) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        for name, value in (
            ("LEAK_DO_TOKEN", DO_SECRET),
            ("LEAK_HZ_TOKEN", HZ_SECRET),
            ("LEAK_BOT_TOKEN", BOT_SECRET),
            ("LEAK_HOOK_SECRET", HOOK_SECRET),
        ):
            monkeypatch.setenv(name, value)
        yield sb


@pytest.fixture
def policy(tmp_path, sandbox, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()  # `plan --out` does not create folders (see the report)
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(leaky(sandbox.webhook_url("leak")))
    return path


def everything(capsys, sandbox: Sandbox, folder: Path) -> dict[str, str]:
    """Every place a secret could surface, by name: the files in `folder` that the tool
    wrote (not the configuration the test wrote there) and all the sandbox saw."""
    out, err = capsys.readouterr()
    places = {"stdout": out, "stderr": err}
    for path in sorted(folder.rglob("*")):
        written_by_test = (
            path.suffix in (".yaml", ".json")
            and path.parent == folder
            or path.name == "snapshots.config"
            or path.parent.name in ("configs", "secrets")
        )
        if path.is_file() and not written_by_test:
            places[str(path.relative_to(folder))] = path.read_text(
                encoding="utf-8", errors="replace"
            )
    places["telegram messages"] = json.dumps(sandbox.telegram_messages(), ensure_ascii=False)
    places["webhook deliveries"] = json.dumps(sandbox.webhook_deliveries(), ensure_ascii=False)
    places["sandbox request log"] = json.dumps(sandbox.requests(), ensure_ascii=False)
    return places


# Whitespace, and its escapes in reprs, JSON and URLs: taken out before searching again.
_WHITESPACE = re.compile(r"\s|\\+(?:[nrtvf]|x0[9a-d]|u000[9a-d])|%0[9aAdD]|%20")


def assert_no_secret(places: dict[str, str]) -> None:
    leaks = [
        f"{what} in {where}"
        for where, text in places.items()
        for what in SECRETS
        if any(
            SECRETS[what] in seen or PIECES[what] in seen
            for seen in (text, _WHITESPACE.sub("", text))
        )
    ]
    assert not leaks, "secrets leaked: " + "; ".join(leaks)


def test_the_scenarios_really_produce_the_places_searched(policy, sandbox, tmp_path, capsys, clock):
    assert (
        main(
            [
                "apply",
                "--policy",
                str(policy),
                "-v",
                "--report",
                "run/report.json",
                "--metrics-file",
                "run/metrics.prom",
            ],
            clock=clock,
        )
        == 0
    )
    places = everything(capsys, sandbox, tmp_path)
    for name in (
        "run/snapshot-policy.log",
        "run/audit.jsonl",
        "run/report.json",
        "run/metrics.prom",
    ):
        assert places.get(name), f"{name} was not written"
    assert (
        "created" in places["stdout"]
        and sandbox.telegram_messages()
        and sandbox.webhook_deliveries()
    )
    assert any(
        "x-snapshot-policy-signature" in {k.lower() for k in d["headers"]}
        for d in sandbox.webhook_deliveries()
    )
    assert_no_secret(places)


def test_validate_and_validate_online_leak_nothing(policy, sandbox, tmp_path, capsys, clock):
    assert main(["validate", str(policy)], clock=clock) == 0
    assert main(["validate", "--online", "-v", str(policy)], clock=clock) == 0
    assert_no_secret(everything(capsys, sandbox, tmp_path))


def test_plan_in_every_output_leaks_nothing(policy, sandbox, tmp_path, capsys, clock):
    assert main(["plan", "--policy", str(policy), "-v"], clock=clock) == 0
    assert (
        main(
            ["plan", "--policy", str(policy), "--output", "json", "--out", "out/plan.json"],
            clock=clock,
        )
        == 0
    )
    assert main(["apply", "--policy", str(policy), "--dry-run", "-v"], clock=clock) == 0
    assert_no_secret(everything(capsys, sandbox, tmp_path))


def test_apply_with_notifications_report_and_metrics_leaks_nothing(
    policy, sandbox, tmp_path, capsys, clock
):
    assert main(["plan", "--policy", str(policy), "--out", "out/plan.json"], clock=clock) == 0
    assert (
        main(
            [
                "apply",
                "--policy",
                str(policy),
                "--plan",
                "out/plan.json",
                "-v",
                "--report",
                "run/report.json",
                "--metrics-file",
                "run/metrics.prom",
            ],
            clock=clock,
        )
        == 0
    )
    assert (
        main(
            [
                "apply",
                "--policy",
                str(policy),
                "--report",
                "run/report-2.json",
                "--metrics-file",
                "run/metrics.prom",
            ],
            clock=clock,
        )
        == 0
    )
    assert_no_secret(everything(capsys, sandbox, tmp_path))


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param(
            [("error", {"service": "digitalocean", "method": "GET", "status": 401, "count": None})],
            id="do-401",
        ),
        pytest.param(
            [("error", {"service": "hetzner", "method": "GET", "status": 403, "count": None})],
            id="hz-403",
        ),
        # Faults that clear or are final: the CLI's retries sleep for real, so no lasting outage
        # here (the library-level fault suites in tests/chaos cover those with a fake sleep).
        pytest.param(
            [
                ("fail_action", {"service": "hetzner"}),
                ("drop", {"service": "digitalocean", "method": "DELETE", "count": 1}),
                (
                    "error",
                    {"service": "digitalocean", "method": "DELETE", "status": 403, "count": None},
                ),
            ],
            id="failed-action-and-failed-deletes",
        ),
        pytest.param(
            [
                ("lose_reply", {"service": "digitalocean", "method": "POST", "count": 1}),
                ("error", {"service": "hetzner", "method": "POST", "status": 422, "count": None}),
            ],
            id="lost-and-refused-creates",
        ),
        pytest.param(
            [
                ("error", {"service": "telegram", "status": 500, "count": None}),
                ("error", {"service": "webhook", "status": 502, "count": None}),
            ],
            id="notifications-5xx",
        ),
        pytest.param(
            [
                ("drop", {"service": "telegram", "count": None}),
                ("drop", {"service": "webhook", "count": None}),
            ],
            id="notifications-dropped",
        ),
        pytest.param(
            [
                ("delay", {"service": "telegram", "seconds": 1.2, "count": None}),
                ("delay", {"service": "webhook", "seconds": 1.2, "count": None}),
            ],
            id="notifications-timeout",
        ),
        pytest.param(
            [("error", {"service": "telegram", "status": 401, "count": None})], id="telegram-401"
        ),
    ],
)
def test_a_failing_run_leaks_nothing(faults, policy, sandbox, tmp_path, capsys, clock):
    for kind, options in faults:
        sandbox.inject(kind, **options)
    code = main(
        [
            "apply",
            "--policy",
            str(policy),
            "-v",
            "--report",
            "run/report.json",
            "--metrics-file",
            "run/metrics.prom",
        ],
        clock=clock,
    )
    assert code in (0, 1, 2)
    places = everything(capsys, sandbox, tmp_path)
    assert places.get("run/report.json")
    assert_no_secret(places)


def test_wrong_tokens_and_refused_endpoints_leak_nothing(
    policy, sandbox, tmp_path, capsys, monkeypatch, clock
):
    monkeypatch.setenv(
        "LEAK_DO_TOKEN", DO_SECRET.replace("d1", "e2")
    )  # a wrong token: 401, whose message must not echo it
    monkeypatch.setenv(
        "HCLOUD_ENDPOINT", "http://api.example.invalid/v1"
    )  # plain http off this machine: refused before sending
    assert (
        main(["apply", "--policy", str(policy), "-v", "--report", "run/report.json"], clock=clock)
        == 1
    )
    assert main(["validate", "--online", str(policy)], clock=clock) == 1
    assert_no_secret(everything(capsys, sandbox, tmp_path))


def test_config_errors_never_echo_a_secret(sandbox, tmp_path, capsys, monkeypatch, clock):
    """A misspelt key, a wrong type or a bad value right beside (or holding) a literal
    secret: the messages name the file, the key and the problem, never the value."""
    monkeypatch.chdir(tmp_path)
    usual = leaky(sandbox.webhook_url("leak"))
    broken = {
        "misspelt.yaml": usual.replace("token: 'env:LEAK_DO_TOKEN'", f"tokn: {DO_SECRET}"),
        "literal-bad-type.yaml": usual.replace(
            "chat_id: '-1001234567890'", f"chat_id: [{BOT_SECRET}]"
        ).replace("env:LEAK_BOT_TOKEN", BOT_SECRET),
        "bad-secret-ref.yaml": usual.replace(
            "secret: 'env:LEAK_HOOK_SECRET'", f"secret: {{value: {HOOK_SECRET}}}"
        ),
        "unknown-account.yaml": usual.replace(
            "token: 'env:LEAK_HZ_TOKEN'", f"token: {HZ_SECRET}, region: {HZ_SECRET}"
        ),
        # A quote left open before a literal secret, and no other single quote: YAML reads on to
        # the end of the file and shows the start of the secret in its message.
        "yaml-syntax.yaml": usual.replace("'", '"').replace(
            'token: "env:LEAK_HZ_TOKEN"}', f"token: '{HZ_SECRET}}}"
        ),
    }
    for name, text in broken.items():
        assert text != usual, name  # each replacement found what it replaces
        path = tmp_path / name
        path.write_text(text)
        assert main(["validate", str(path)], clock=clock) == 1, name
        assert main(["plan", "--policy", str(path)], clock=clock) == 1, name
    server = {
        "provider": "digitalocean",
        "id": "3164444",
        "name": "web-1",
        "api_tokn": DO_SECRET,
        "retain_last_snapshots": -1,
        "telegram": {"enabled": True, "bot_token": BOT_SECRET, "chat_id": {"x": BOT_SECRET}},
    }
    (tmp_path / "droplet.json").write_text(json.dumps({"digitalocean_droplet": server}))
    assert main(["validate", str(tmp_path / "droplet.json")], clock=clock) == 1
    (tmp_path / "broken.json").write_text(
        json.dumps({"digitalocean_droplet": dict(server, api_token=DO_SECRET)})[:-30]
    )
    assert main(["validate", str(tmp_path / "broken.json")], clock=clock) == 1
    assert_no_secret(everything(capsys, sandbox, tmp_path))


@pytest.fixture
def legacy(tmp_path, sandbox, monkeypatch):
    """A snapshots.py layout holding every secret literally, as the old files did."""
    (tmp_path / "snapshots.config").write_text(
        "[DIRECTORIES]\nconfigs_dir = configs\nlogs_dir = logs\n\n"
        "[TIMING]\ndelay_between_servers = 0\n\n[LOGGING]\nlevel = DEBUG\n\n"
        f"[TELEGRAM]\nenabled = true\nbot_token = {BOT_SECRET}\nchat_id = -1001234567890\n"
        "retries = 0\ntimeout = 1\n\n"
        f"[WEBHOOK]\nenabled = true\nurl = {sandbox.webhook_url('legacy')}\n"
        "retries = 0\ntimeout = 1\n"
    )
    configs = tmp_path / "configs"
    configs.mkdir()
    (configs / "droplet.json").write_text(
        json.dumps(
            {
                "digitalocean_droplet": {
                    "provider": "digitalocean",
                    "id": "3164444",
                    "name": "web-1",
                    "api_token": DO_SECRET,
                    "retain_last_snapshots": 3,
                }
            }
        )
    )
    (configs / "server.json").write_text(
        json.dumps(
            {
                "hetzner_cloud_server": {
                    "provider": "hetzner",
                    "id": 4711,
                    "name": "db-1",
                    "api_token": HZ_SECRET,
                    "retain_last_snapshots": 2,
                }
            }
        )
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_legacy_layout_validate_plan_apply_and_migrate_leak_nothing(legacy, sandbox, capsys, clock):
    assert main(["validate", "-v"], clock=clock) == 0
    assert main(["plan"], clock=clock) == 0
    assert (
        main(
            ["apply", "-v", "--report", "logs/report.json", "--metrics-file", "logs/metrics.prom"],
            clock=clock,
        )
        == 0
    )
    places = everything(capsys, sandbox, legacy)
    assert places.get("logs/snapshots.log") and sandbox.telegram_messages()
    assert_no_secret(places)

    assert main(["migrate"], clock=clock) == 0
    out, err = capsys.readouterr()
    assert "env:" in out and "export" in err
    assert_no_secret({"migrate stdout": out, "migrate stderr": err})
    (legacy / "snapshot-policy.yaml").write_text(out)
    assert (
        main(["validate", "--policy", "snapshot-policy.yaml"], clock=clock) == 1
    )  # the exported variables are not set here
    assert_no_secret(everything(capsys, sandbox, legacy))


def test_a_failing_legacy_run_leaks_nothing(legacy, sandbox, capsys, clock):
    sandbox.inject("fail_action", service="digitalocean")
    sandbox.inject("error", service="hetzner", method="GET", status=401, count=None)
    sandbox.inject("error", service="telegram", status=500, count=None)
    assert main(["apply", "-v", "--report", "logs/report.json"], clock=clock) == 1
    assert_no_secret(everything(capsys, sandbox, legacy))


# -- issue 12: whitespace around and inside secrets, and the one masking chokepoint ----------------

AROUND = {
    "trailing newline": "{}\n",
    "trailing CRLF": "{}\r\n",
    "leading space": " {}",
    "tabs and newlines around": "\t{} \n\n",
}
ENV_NAMES = {
    "DigitalOcean token": "LEAK_DO_TOKEN",
    "Hetzner token": "LEAK_HZ_TOKEN",
    "Telegram bot token": "LEAK_BOT_TOKEN",
    "webhook secret": "LEAK_HOOK_SECRET",
}


def plan_apply_everything(policy: Path, clock) -> list[int]:
    """validate --online, plan in both outputs and to a file, apply that plan with a report and
    metrics, apply again: every command that reads the secrets, every file the tool writes."""
    return [
        main(["validate", "--online", "-v", str(policy)], clock=clock),
        main(["plan", "--policy", str(policy), "-v", "--out", "out/plan.json"], clock=clock),
        main(["plan", "--policy", str(policy), "--output", "json"], clock=clock),
        main(
            [
                "apply",
                "--policy",
                str(policy),
                "-v",
                "--plan",
                "out/plan.json",
                "--report",
                "run/report.json",
                "--metrics-file",
                "run/metrics.prom",
            ],
            clock=clock,
        ),
        main(
            [
                "apply",
                "--policy",
                str(policy),
                "--report",
                "run/report-2.json",
                "--metrics-file",
                "run/metrics.prom",
            ],
            clock=clock,
        ),
    ]


@pytest.mark.parametrize("around", AROUND.values(), ids=AROUND.keys())
def test_env_secrets_with_whitespace_around_are_trimmed_work_and_leak_nothing(
    around, policy, sandbox, tmp_path, capsys, monkeypatch, clock
):
    for what, name in ENV_NAMES.items():
        monkeypatch.setenv(name, around.format(SECRETS[what]))
    assert plan_apply_everything(policy, clock) == [
        0,
        0,
        0,
        0,
        0,
    ]  # the sandbox takes only the exact tokens
    places = everything(capsys, sandbox, tmp_path)
    assert sandbox.telegram_messages() and sandbox.webhook_deliveries()
    assert_no_secret(places)


def test_literal_and_file_secrets_with_whitespace_around_are_trimmed_work_and_leak_nothing(
    sandbox, tmp_path, capsys, monkeypatch, clock
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "hz").write_text(f"{HZ_SECRET}\r\n")
    (tmp_path / "secrets" / "bot").write_text(f"\ufeff{BOT_SECRET}\n\n")
    text = (
        leaky(sandbox.webhook_url("leak"))
        # YAML's escape: a real line break
        .replace("token: 'env:LEAK_DO_TOKEN'", f'token: "  {DO_SECRET}\\n"')
        .replace("env:LEAK_HZ_TOKEN", "file:secrets/hz")
        .replace("env:LEAK_BOT_TOKEN", "file:secrets/bot")
    )
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(text)
    policy.chmod(0o600)
    assert plan_apply_everything(policy, clock) == [0, 0, 0, 0, 0]
    places = everything(capsys, sandbox, tmp_path)
    assert "holds a secret" not in places["stderr"]  # 0600: nothing to warn of
    assert_no_secret(places)


@pytest.mark.parametrize(
    "inside", ["\n", "\r\n", " ", "\x1b"], ids=["line break", "CRLF", "space", "escape character"]
)
def test_a_secret_with_whitespace_inside_is_an_error_naming_the_key_never_the_value(
    inside, policy, sandbox, tmp_path, capsys, monkeypatch, clock
):
    monkeypatch.setenv("LEAK_DO_TOKEN", DO_SECRET[:24] + inside + DO_SECRET[24:])
    assert main(["validate", str(policy)], clock=clock) == 1
    err = capsys.readouterr().err
    assert (
        "accounts.do.token: the value of environment variable LEAK_DO_TOKEN has a" in err
        and "inside it (not shown here)" in err
    )
    assert main(["plan", "--policy", str(policy), "-v"], clock=clock) == 1
    assert (
        main(["apply", "--policy", str(policy), "-v", "--report", "run/report.json"], clock=clock)
        == 1
    )
    places = everything(capsys, sandbox, tmp_path)
    assert not sandbox.requests()  # nothing was sent anywhere with it
    assert_no_secret({**places, "validate stderr": err})
    for piece in (DO_SECRET[:24], DO_SECRET[24:]):
        assert not any(piece in text for text in places.values())


def a_cloud_whose_server_name_holds_the_token(now, name: str) -> dict:
    state = cloud(now)
    state["servers"][0]["name"] = name
    state["snapshots"] = [
        dict(s, name=s["name"].replace("web-1", name)) if s["account"] == "do" else s
        for s in state["snapshots"]
    ]
    return state


SECRET_NAMES = {
    "verbatim": "web-" + DO_SECRET,
    "a line break inside": "web-" + DO_SECRET[:30] + "\n" + DO_SECRET[30:],
}


@pytest.fixture(params=SECRET_NAMES.values(), ids=SECRET_NAMES.keys())
def named_after_the_token(request, tmp_path, monkeypatch, clock):
    """A sandbox whose droplet's name holds the DigitalOcean token: what the cloud sends back
    reaches every output, so only the masking chokepoint stands between it and the user."""
    with Sandbox(
        a_cloud_whose_server_name_holds_the_token(clock.now, request.param),
        action_seconds=0.05,
        clock=clock,
    ) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        for what, name in ENV_NAMES.items():
            monkeypatch.setenv(name, SECRETS[what])
        monkeypatch.chdir(tmp_path)
        (tmp_path / "snapshot-policy.yaml").write_text(leaky(sb.webhook_url("leak")))
        yield sb


def test_a_secret_in_a_server_name_is_masked_in_every_stream_file_and_log(
    named_after_the_token, tmp_path, capsys, clock
):
    assert plan_apply_everything(tmp_path / "snapshot-policy.yaml", clock) == [0, 0, 0, 0, 0]
    places = everything(capsys, named_after_the_token, tmp_path)
    assert (
        "web-***" in places["stdout"]
        and "web-***" in places["out/plan.json"]
        and "web-***" in places["run/report.json"]
    )
    assert "web-***" in places["run/audit.jsonl"] and "web-***" in places["run/snapshot-policy.log"]
    # The snapshot is named after the server, as the cloud itself names it; notifications are
    # the next test's.
    del places["sandbox request log"], places["telegram messages"], places["webhook deliveries"]
    assert_no_secret(places)


def test_a_secret_in_a_server_name_is_masked_in_every_notification(
    named_after_the_token, tmp_path, capsys, clock
):
    assert main(["apply", "--policy", "snapshot-policy.yaml"], clock=clock) == 0
    places = everything(capsys, named_after_the_token, tmp_path)
    assert named_after_the_token.telegram_messages() and named_after_the_token.webhook_deliveries()
    assert_no_secret({k: places[k] for k in ("telegram messages", "webhook deliveries")})


def test_plan_and_validate_log_retries_to_the_log_file_not_to_an_unmasked_stderr(
    policy, sandbox, tmp_path, capsys, clock
):
    for command in (["plan", "--policy", str(policy)], ["validate", "--online", str(policy)]):
        sandbox.inject("error", service="digitalocean", method="GET", status=503, count=1)
        assert main(command, clock=clock) == 0, command
        err = capsys.readouterr().err
        assert "retrying" not in err, (
            command
        )  # before: Python's last-resort handler printed it, unmasked
    log = (tmp_path / "run" / "snapshot-policy.log").read_text()
    assert log.count("retrying in") == 2


def test_a_config_file_holding_a_secret_that_others_can_read_is_warned_about_once(
    legacy, sandbox, capsys, clock
):
    droplet = legacy / "configs" / "droplet.json"
    for path in (legacy / "snapshots.config", droplet, legacy / "configs" / "server.json"):
        path.chmod(0o600)
    droplet.chmod(0o644)
    assert main(["validate"], clock=clock) == 0
    err = capsys.readouterr().err
    assert err.count("holds a secret") == 1
    assert (
        f"warning: run chmod 600 {Path('configs') / 'droplet.json'} "
        "(it holds a secret, mode 0644)\n"
    ) in err
    droplet.chmod(0o600)
    assert main(["validate"], clock=clock) == 0
    assert "holds a secret" not in capsys.readouterr().err


def test_an_unexpected_error_shows_its_traceback_masked(
    policy, sandbox, tmp_path, capsys, monkeypatch, clock
):
    def broken(*args, **kwargs):
        raise RuntimeError(f"a bug holding {{'Authorization': 'Bearer {DO_SECRET}\\n'}}")

    monkeypatch.setattr("snapshot_policy.engine.run.decide", broken)
    with pytest.raises(RuntimeError):  # raised again for tests; `console` exits 1 instead
        main(["plan", "--policy", str(policy)], clock=clock)
    places = everything(capsys, sandbox, tmp_path)
    assert (
        "stopped on an unexpected error" in places["stderr"]
        and "Traceback (most recent call last)" in places["stderr"]
    )
    assert "RuntimeError: a bug holding {'Authorization': 'Bearer ***" in places["stderr"]
    assert_no_secret(places)


# -- issue 19, item 14: a secret folded across lines, or printed in part --------------------------

FOLD_TOKEN = HZ_TOKEN  # 64 characters that look random, as a Hetzner token does
BEFORE_PRINTS = [FOLD_TOKEN[:40], FOLD_TOKEN[40:]]  # folded after 40 characters
AFTER_PRINTS = [
    *(FOLD_TOKEN[i : i + 20] for i in range(0, 64, 20)),  # a line break every 20 characters
    f"{FOLD_TOKEN[10:18]}\\t{FOLD_TOKEN[18:26]}",  # 8 + 8 characters around an escaped tab
]


def fragments_of(secret: str, text: str) -> list[str]:
    """Every run of 12 characters of `secret` that `text` shows, as it is or with its whitespace
    and the escapes of whitespace taken out."""
    runs = {secret[i : i + 12] for i in range(len(secret) - 11)}
    return sorted(run for run in runs if run in text or run in _WHITESPACE.sub("", text))


@pytest.fixture
def folding(tmp_path, monkeypatch, clock):
    """A Hetzner target whose hooks print the account's token folded over lines: the `before`
    hook at 40 characters, the `after` hook every 20, and a piece split by an escaped tab."""
    with Sandbox(base_cloud(clock.now), action_seconds=0.05, clock=clock) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("FOLD_HZ_TOKEN", FOLD_TOKEN)
        monkeypatch.chdir(tmp_path)
        before, after = (
            ", ".join(map(json.dumps, prints)) for prints in (BEFORE_PRINTS, AFTER_PRINTS)
        )
        (tmp_path / "snapshot-policy.yaml").write_text(
            "version: 1\n"
            "accounts:\n  hz: {provider: hetzner, token: env:FOLD_HZ_TOKEN}\n"
            "targets:\n"
            "  - name: db\n    account: hz\n    ids: [4711]\n    adopt_legacy_names: true\n"
            "    retention: {keep_last: 2}\n"
            f"    hooks: {{before: [printf, '%s\\n', {before}], "
            f"after: [printf, '%s\\n', {after}]}}\n"
            "settings:\n  lock_file: run/snapshot-policy.lock\n"
            "  log: {file: run/snapshot-policy.log, level: DEBUG}\n"
            "  audit_log: run/audit.jsonl\n"
        )
        yield sb


def test_a_token_a_hook_prints_folded_over_lines_leaves_no_12_character_piece(
    folding, tmp_path, capsys, clock
):
    assert (
        main(
            ["apply", "--policy", "snapshot-policy.yaml", "-v", "--report", "run/report.json"],
            clock=clock,
        )
        == 0
    )
    places = everything(capsys, folding, tmp_path)
    log = places["run/snapshot-policy.log"]
    assert (
        log.count("before hook: ***") == 2 and log.count("after hook: ***") == 4
    )  # the hooks ran and were logged
    assert f"after hook: {FOLD_TOKEN[60:]}" in log  # 4 characters alone are not a piece of it
    assert {
        where: fragments_of(FOLD_TOKEN, text)
        for where, text in places.items()
        if fragments_of(FOLD_TOKEN, text)
    } == {}
