"""What the commands say, and how it looks (issue 21, item 11): servers named and counted
apart from targets, lines within 80 columns, help texts whole, file modes, the saved plan's
create name."""

from __future__ import annotations

import json
import re
import stat

import pytest
from click.testing import CliRunner

from snapshot_policy.cli import cli, main
from snapshot_policy.output.logs import unstamped
from tests.e2e.cloud import unwrapped
from tests.e2e.policies import DB, policy_yaml

COLUMNS = 80
# A target covering two servers (web-1 and web-10), and one with one server.
WEB_BOTH = {
    "name": "web",
    "account": "do",
    "names": ["web-1", "web-10"],
    "retention": {"keep_last": 3},
}


@pytest.fixture
def policy(tmp_path, sandbox, tokens):
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(policy_yaml(WEB_BOTH, DB, settings={"lock_file": "run/sp.lock"}))
    return path


def wide(text: str) -> list[str]:
    return [line for line in text.splitlines() if len(line) > COLUMNS]


def test_validate_online_names_the_servers_each_target_matched(policy, capsys, clock):
    assert main(["validate", "--online", "--policy", str(policy)], clock=clock) == 0
    out = capsys.readouterr().out
    assert "web: matched 2 server(s): web-1 (digitalocean server 3164444), web-10" in out
    assert "db: matched 1 server(s): db-1 (hetzner server 4711)" in out
    assert out.endswith("1 file(s) valid and checked online: 2 target(s), 3 server(s).\n")
    assert not wide(out)


def test_validate_online_says_a_selector_that_matched_nothing(tmp_path, sandbox, tokens, capsys):
    path = tmp_path / "p.yaml"
    path.write_text(
        policy_yaml(
            {
                "name": "tagged",
                "account": "do",
                "label_selector": "nothing-has-it",
                "retention": {"keep_last": 1},
            },
            DB,
        )
    )
    code = main(["validate", "--online", "--policy", str(path)])
    captured = capsys.readouterr()
    assert code == 1
    assert "tagged: no server matches label selector 'nothing-has-it'" in captured.err
    assert "tagged: matched" not in captured.out  # its reason is said once, on stderr
    assert "db: matched 1 server(s): db-1 (hetzner server 4711)" in captured.out


def test_plan_and_apply_count_targets_and_servers_apart(policy, capsys, clock):
    assert main(["plan", "--policy", str(policy)], clock=clock) == 0
    out = capsys.readouterr().out
    assert re.search(r"skipped\.\s+2 target\(s\) with 3 server\(s\)\.", out), out
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    err = capsys.readouterr().err
    assert "snapshot-policy apply: 2 target(s), 3 server(s), 3 created, " in err


def test_apply_result_lines_stay_within_80_columns_with_long_names(
    tmp_path, sandbox, tokens, capsys, clock
):
    long_name = "a-server-with-a-long-name-in-production-eu-central"
    sandbox.load_state(
        {
            **sandbox.dump_state(),
            "servers": [
                *sandbox.dump_state()["servers"],
                {"account": "do", "id": 777, "name": long_name},
            ],
        }
    )
    path = tmp_path / "p.yaml"
    path.write_text(
        policy_yaml(
            {"name": "a-target-with-a-long-name-too", "account": "do", "ids": [777, 3164444]},
            defaults={"retention": {"keep_last": 1}},
        )
    )
    assert main(["apply", "--policy", str(path)], clock=clock) == 0
    # Under cron each line also starts with its time; the message itself fits 80 columns.
    out = unstamped(capsys.readouterr().out)
    assert not wide(out), out
    joined = re.sub(r"\n +", " ", out)
    assert f"a-target-with-a-long-name-too: {long_name} (digitalocean server 777): ok: " in joined
    assert "managed snapshot(s) remain" in joined


def test_simulate_header_stays_within_80_columns(capsys):
    argv = ["simulate", "--keep-hourly", "24", "--keep-daily", "7", "--keep-weekly", "4"]
    argv += ["--keep-within-monthly", "2y", "--keep-within-yearly", "10y", "--days", "400"]
    argv += [
        "--runs-per-day",
        "24",
        "--snapshot-size",
        "20",
        "--timezone",
        "America/Argentina/Buenos_Aires",
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert not wide(out), out
    assert out.startswith("Simulated 400 day(s) from ")
    assert "9600 snapshots made, " in out


COMMANDS = [
    "plan",
    "apply",
    "status",
    "validate",
    "drill",
    "restore",
    "pin",
    "unpin",
    "undelete",
    "simulate",
    "migrate",
    "sandbox",
    "demo",
    "completion",
]


@pytest.mark.parametrize("command", [[], *([c] for c in COMMANDS)])
def test_help_stays_within_80_columns(command):
    result = CliRunner().invoke(cli, [*command, "--help"], terminal_width=COLUMNS)
    assert result.exit_code == 0
    assert not wide(result.output), result.output


def test_top_level_help_shows_each_command_description_whole():
    result = CliRunner().invoke(cli, ["--help"], terminal_width=COLUMNS)
    listed = result.output[result.output.index("Commands:") :].splitlines()[1:]
    assert len(listed) == len(COMMANDS)  # one line each: none wrapped
    for line in listed:
        assert not line.rstrip().endswith("..."), line
        assert line.rstrip().endswith("."), line


@pytest.mark.parametrize("command", ["plan", "status", "simulate"])
def test_output_option_has_help_text(command):
    result = CliRunner().invoke(cli, [command, "--help"], terminal_width=COLUMNS)
    block = result.output[result.output.index("  --output") :]
    block = block[: block.index("\n  -", 1)]
    assert "text" in block and "JSON" in block and "people" in block


@pytest.mark.parametrize(
    ("exported", "said"), [("", "set but empty"), ("  \n", "set but blank (only whitespace)")]
)
def test_an_exported_empty_token_is_called_empty_not_unset(
    tmp_path, tokens, monkeypatch, capsys, exported, said
):
    path = tmp_path / "p.yaml"
    path.write_text(policy_yaml(WEB_BOTH))
    monkeypatch.setenv("TEST_DO_TOKEN", exported)
    assert main(["validate", "--policy", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"environment variable TEST_DO_TOKEN is {said}; export the token itself" in err
    assert "not set" not in err
    monkeypatch.delenv("TEST_DO_TOKEN")
    assert main(["validate", "--policy", str(path)]) == 1
    assert "environment variable TEST_DO_TOKEN is not set; export it" in capsys.readouterr().err


def test_simulate_chart_is_readable_by_others_like_any_picture(tmp_path, capsys):
    chart = tmp_path / "charts" / "survivors.svg"
    assert main(["simulate", "--keep-daily", "7", "--chart", str(chart)]) == 0
    assert stat.S_IMODE(chart.stat().st_mode) == 0o644
    assert chart.read_text().startswith("<svg") or "<svg" in chart.read_text()[:200]
    chart.chmod(0o600)  # replacing an existing chart gives the new one the same mode
    assert main(["simulate", "--keep-daily", "3", "--chart", str(chart)]) == 0
    assert stat.S_IMODE(chart.stat().st_mode) == 0o644


@pytest.mark.parametrize(
    ("settings", "where"),
    [
        ({}, "snapshot-policy-audit.jsonl"),  # neither log nor lock file set: the policy's folder
        ({"lock_file": "run/sp.lock"}, "run/snapshot-policy-audit.jsonl"),
        (
            {"lock_file": "run/sp.lock", "log": {"file": "logs/sp.log"}},
            "logs/snapshot-policy-audit.jsonl",
        ),
        ({"log": {"file": "logs/sp.log"}, "audit_log": "audit/x.jsonl"}, "audit/x.jsonl"),
    ],
)
def test_the_audit_log_is_where_the_readme_says(
    tmp_path, sandbox, tokens, clock, capsys, settings, where
):
    """README, Monitoring: `settings.audit_log`, relative to the policy file; by default
    beside the log file, and without one beside the lock file."""
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(policy_yaml(WEB_BOTH, settings=settings or None))
    assert main(["apply", "--policy", str(path)], clock=clock) == 0
    audit = tmp_path / where
    lines = [json.loads(line) for line in audit.read_text().splitlines()]
    assert len([line for line in lines if line["event"] == "created"]) == 2
    assert sorted(tmp_path.rglob("*.jsonl")) == [audit]  # and nowhere else


def test_a_snapshots_py_layout_keeps_its_audit_log_in_logs_dir(
    legacy_layout, sandbox, monkeypatch, clock, capsys
):
    monkeypatch.chdir(legacy_layout)
    server_file = legacy_layout / "configs" / "hetzner_cloud_server1.json"
    server = json.loads(server_file.read_text())
    server["hetzner_cloud_server"]["webhook"]["enabled"] = False  # its host does not exist
    server_file.write_text(json.dumps(server))
    assert main(["apply"], clock=clock) == 0
    assert (legacy_layout / "logs" / "snapshot-policy-audit.jsonl").is_file()
    assert sorted(legacy_layout.rglob("*.jsonl")) == [
        legacy_layout / "logs" / "snapshot-policy-audit.jsonl"
    ]


@pytest.mark.parametrize("service", ["digitalocean", "hetzner"])
def test_a_snapshot_action_that_ended_in_error_is_not_called_no_response(
    policy, sandbox, capsys, clock, service
):
    """The cloud answered: its action ended in error. "(no response)" is kept for a request
    nothing answered."""
    sandbox.inject("fail_action", service=service)
    assert main(["apply", "--policy", str(policy)], clock=clock) == 2
    out = unwrapped(capsys.readouterr().out)
    failed = next(line for line in out.splitlines() if ": FAILED: " in line)
    assert f"{service} wait for snapshot failed: " in failed, failed
    assert "no response" not in out


def test_no_response_is_said_when_nothing_answered():
    """A request no reply came to (the adapters give no status and no situation): a lost
    connection, a timeout. The cloud's retries make this slow end to end, hence here."""
    from snapshot_policy.core.model import ProviderError

    lost = ProviderError("hetzner", "list servers", None, "ConnectionError")
    assert str(lost) == "hetzner list servers failed (no response): ConnectionError"
    answered = ProviderError("hetzner", "wait for snapshot", None, "action 5 failed", situation="")
    assert str(answered) == "hetzner wait for snapshot failed: action 5 failed"
    coded = ProviderError("hetzner", "get server", None, "gone", situation="Hetzner error gone")
    assert str(coded) == "hetzner get server failed (Hetzner error gone): gone"


def test_an_answer_with_an_http_status_names_the_status(policy, sandbox, capsys, clock):
    sandbox.inject("error", service="digitalocean", status=403, count=None)
    assert main(["plan", "--policy", str(policy)], clock=clock) == 1
    out = unwrapped(capsys.readouterr().out)
    assert "failed (HTTP 403): " in out and "no response" not in out


def test_a_saved_plan_says_the_name_apply_makes(policy, sandbox, capsys, clock, tmp_path):
    """The plan's create name carries the plan's time, and says so; the saved plan gives the
    name apply makes with {timestamp} for its time, and apply --plan, an hour later, makes
    exactly that name at its own time."""
    saved = tmp_path / "plan.json"
    assert main(["plan", "--policy", str(policy), "--out", str(saved)], clock=clock) == 0
    out = capsys.readouterr().out
    assert "The time in a + create name is this plan's.\n" in out
    assert "Apply names the snapshot for the time it runs." in out
    document = json.loads(saved.read_text())
    web1 = next(t for t in document["targets"] if t["server_name"] == "web-1")
    assert web1["create"]["name"] == f"web-1-{clock.now:%Y%m%d%H%M%S}"
    assert web1["create"]["name_at_apply"] == "web-1-{timestamp}"
    clock.advance(hours=1)
    assert main(["apply", "--policy", str(policy), "--plan", str(saved)], clock=clock) == 0
    made = {s["name"] for s in sandbox.dump_state()["snapshots"] if s["server_id"] == 3164444}
    expected = web1["create"]["name_at_apply"].format(timestamp=f"{clock.now:%Y%m%d%H%M%S}")
    assert expected in made and web1["create"]["name"] not in made


def test_a_plan_with_nothing_to_create_has_no_note_on_names(policy, capsys, clock):
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    capsys.readouterr()
    assert main(["plan", "--policy", str(policy)], clock=clock) == 0
    assert "+ create" not in (out := capsys.readouterr().out) and "time in a" not in out
