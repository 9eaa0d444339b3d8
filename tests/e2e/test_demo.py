"""`run_demo`: the offline walk-through of plan, apply, notifications, a settled second plan,
status and a restore drill."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from snapshot_policy.cli import main
from snapshot_policy.cli.demo import TOKENS, run_demo
from snapshot_policy.output.logs import unstamped
from tests.e2e.cloud import unwrapped

# Which of the fleet's snapshots the daily and weekly rules keep depends on where the weeks
# fall, so the demo runs at one pinned moment (a Sunday) and the counts below hold on any date.
DEMO_AT = datetime(2026, 11, 29, 9, 30, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def demo() -> tuple[int, str, float]:
    """The demo's exit code, everything it printed, and how long it took."""
    lines: list[str] = []
    started = time.monotonic()
    code = run_demo(main, lambda: DEMO_AT, out=lines.append, action_seconds=0.05)
    return code, "\n".join(lines), time.monotonic() - started


def section(text: str, step: int) -> str:
    """The output of one numbered step, up to the next heading."""
    start = text.index(f"== Step {step}.")
    end = text.find("== Step", start + 1)
    return text[start:] if end == -1 else text[start:end]


def json_objects(text: str) -> list[dict]:
    decoder, found, at = json.JSONDecoder(), [], text.find("{")
    while at != -1:
        value, end = decoder.raw_decode(text, at)
        found.append(value)
        at = text.find("{", end)
    return found


def test_demo_succeeds_offline_in_seconds(demo):
    code, text, seconds = demo
    assert code == 0, text
    assert seconds < 30
    assert "run `snapshot-policy plan`.\n" in text
    assert text.rstrip().endswith("  snapshot-policy demo --keep snapshot-policy-demo")


def test_demo_shows_the_plan_then_applies_it(demo):
    _, text, _ = demo
    plan = section(text, 3)
    assert (
        "Plan: 4 to create, 12 to delete, 10 to keep, 3 skipped.\n2 target(s) with 4 server(s)."
        in plan
    )
    assert (
        "+ create web-1-20261129093000 (will be kept by: last)" in plan
    )  # named after the demo's clock
    assert "! skip web-1-before-upgrade" in plan and "unmanaged: not tagged snapshot-policy" in plan
    assert "protected; no retention rule keeps it" in plan
    apply = section(text, 4)
    assert (
        "snapshot-policy apply: 2 target(s), 4 server(s), 4 created, 12 deleted, 0 failed in "
        in unwrapped(apply)
    )
    assert re.search(
        r"web: web-2 \(digitalocean server 3164445\): ok: created web-2-\d{14}, "
        r"deleted 3, 3 managed snapshot\(s\) remain",
        unwrapped(apply),
    )
    assert "(exit code 0)" in apply


def test_demo_shows_the_telegram_messages_and_webhook_payloads_received(demo):
    _, text, _ = demo
    notifications = section(text, 5)
    assert "Telegram, 4 message(s):" in notifications
    assert "to chat -1001234567890:" in notifications
    assert "| Server: db-1 (id 42, hetzner)" in notifications
    webhook = notifications[notifications.index("Webhook 'ops', 4 payload(s):") :]
    payloads = json_objects(webhook)
    assert {(p["server"], p["status"], p["target"]) for p in payloads} == {
        ("web-1", "SUCCESS", "web"),
        ("web-2", "SUCCESS", "web"),
        ("db-1", "SUCCESS", "databases"),
        ("db-2", "SUCCESS", "databases"),
    }


def test_demo_second_plan_has_nothing_to_do_and_untouchables_remain(demo):
    _, text, _ = demo
    again = section(text, 6)
    assert (
        "Plan: 0 to create, 0 to delete, 14 to keep, 3 skipped.\n2 target(s) with 4 server(s)."
        in again
    )
    assert "--detailed-exitcode" in again and "(exit code 0)" in again
    final = section(text, 7)
    assert "web-1-before-upgrade" in final and "  manual\n" in final
    assert "managed, protected\n" in final
    assert final.count("  managed, new\n") == 4


def test_demo_plan_shows_the_web_drill_not_due_after_the_one_marked_two_days_ago(demo):
    _, text, _ = demo
    plan = section(text, 3)
    assert plan.count("  drill every 7d: not due: last drill 2026-11-27 (passed)\n") == 2
    assert "web-1-20261127093000" in section(text, 1)


def test_demo_status_reads_all_well_with_the_last_drill(demo):
    """Step 8: `status` after apply: every server ok, the web servers' last drill from the
    mark on their snapshot, exit code 0."""
    _, text, _ = demo
    status = section(text, 8)
    assert "$ snapshot-policy status --policy " in unwrapped(status)
    assert "web: web-1 (digitalocean server 3164444, account do-demo): ok\n" in status
    assert "databases: db-2 (hetzner server 43, account hz-demo): ok\n" in status
    assert status.count("  last drill: 2026-11-27 (passed, from the snapshot mark)\n") == 2
    assert "  do-demo (digitalocean): 2 server(s), 0 uncovered, 7 snapshot(s)\n" in status
    assert "Status: 4 ok, 0 late, 0 without a snapshot of 4 server(s). Exit 0." in status
    assert "(exit code 0)" in status


def test_demo_drill_restores_probes_and_deletes_and_says_how_long_it_took(demo):
    """Step 9: one `drill --target web`: a throwaway server per web server, made from the
    snapshot apply just made, probed, deleted by id; the result marked on the snapshot."""
    _, text, _ = demo
    drill = section(text, 9)
    assert "$ snapshot-policy drill --policy " in unwrapped(drill) and "--target web" in drill
    said = unwrapped(drill)
    for server_id, name in ((3164444, "web-1"), (3164445, "web-2")):
        assert re.search(
            rf"web: {name} \(digitalocean server {server_id}\): drill of {name}-20261129093000 "
            rf"passed, restored in \d+\.\ds to drill-web-{server_id}-\d{{14}} \(id \d+, "
            r"s-1vcpu-1gb in nyc3\), probe passed; its server is deleted\n",
            said,
        ), said
    assert "2 drill(s): 2 passed, 0 failed." in drill and "(exit code 0)" in drill
    assert "The fake cloud saw 2 server(s) made and 2 deleted by id:" in drill
    assert drill.count("  POST   /v2/droplets -> 202\n") == 2
    assert len(re.findall(r"  DELETE /v2/droplets/\d+ -> 204\n", drill)) == 2
    assert "Servers now: web-1, web-2, db-1, db-2: no drill server is left." in drill
    assert "  web-1-20261129093000: tag snapshot-policy-drilled-passed-2026-11-29\n" in drill
    assert "  web-2-20261129093000: tag snapshot-policy-drilled-passed-2026-11-29\n" in drill


def test_demo_says_which_command_did_not_go_as_expected():
    def failing_status(argv, clock):
        return 2 if argv[0] == "status" else main(argv, clock=clock)

    lines: list[str] = []
    assert run_demo(failing_status, lambda: DEMO_AT, lines.append, action_seconds=0.05) == 1
    assert lines[-1] == (
        "\nThe demo did not go as expected (exit codes: plan 0, apply 0, second plan 0,\n"
        "status 2, drill 0)."
    )


def test_demo_prints_no_token(demo):
    _, text, _ = demo
    assert all(token not in text for token in TOKENS.values())


def test_demo_leaves_the_environment_as_it_was(monkeypatch):
    monkeypatch.setenv("HCLOUD_ENDPOINT", "https://hetzner.example.invalid/v1")
    monkeypatch.delenv("DIGITALOCEAN_API_URL", raising=False)
    before = dict(os.environ)
    assert run_demo(main, lambda: DEMO_AT, out=lambda text: None, action_seconds=0.05) == 0
    assert dict(os.environ) == before


def test_apply_results_follow_the_progress_they_sum_up(demo):
    _, text, _ = demo
    lines = unstamped(section(text, 4)).splitlines()  # apply's lines after their times
    last_progress = max(i for i, line in enumerate(lines) if line.endswith((": done", ": failed")))
    first_result = min(i for i, line in enumerate(lines) if ": ok: created " in line)
    summary = next(i for i, line in enumerate(lines) if line.startswith("snapshot-policy apply: "))
    assert last_progress < first_result < summary


def test_demo_shows_what_the_snapshots_cost_before_and_after_apply(demo):
    """The plan's cost lines (issue 15): per target and in total, the new snapshots estimated as
    their server's newest; the second plan finds about what the first one estimated."""
    _, text, _ = demo
    plan = section(text, 3)
    assert (
        "  storage now: 6 snapshots, 19.35 GB, USD 1.16 a month\n"
        "  after apply: 4 snapshots, ~12.7 GB, ~USD 0.76 a month (new one ~3.55 GB)"
    ) in plan
    assert (
        "  storage now: 7 snapshots, 89.65 GB, EUR 1.28 a month\n"
        "  after apply: 5 snapshots, ~64.55 GB, ~EUR 0.92 a month (new one ~13.05 GB)"
    ) in plan
    assert (
        "Snapshot storage of all targets:\n"
        "  now:         25 snapshots, 177.8 GB, EUR 2.07 + USD 1.99 a month\n"
        "  after apply: 17 snapshots, ~125.1 GB, ~EUR 1.49 + ~USD 1.27 a month\n"
        "  (~ estimated: a new snapshot is counted as large as its server's newest)\n"
        "  at per GB-month prices of USD 0.06 (DigitalOcean), EUR 0.0143 (Hetzner)\n"
    ) in plan
    again = section(text, 6)
    assert (
        "  now:         17 snapshots, 125.3 GB, EUR 1.49 + USD 1.28 a month\n"
        "  after apply: unchanged\n"
    ) in again
    assert ("  2026-11-29T09:30:00Z  web-1-20261129093000   3.60 GB  managed, new\n") in section(
        text, 7
    )


def test_every_line_of_the_demo_fits_80_columns(demo):
    _, text, _ = demo
    assert [line for line in text.splitlines() if len(line) > 80] == []


def test_a_command_past_80_columns_is_continued_so_it_can_be_pasted():
    from snapshot_policy.cli.demo import command_line

    long = "/tmp/snapshot-policy-demo-abcdefgh/a-long-name/snapshot-policy.yaml"
    shown = command_line(["plan", "--policy", long, "--detailed-exitcode"])
    assert all(len(line) <= 80 for line in shown.splitlines())
    assert shown.replace(" \\\n    ", " ") == (
        f"$ snapshot-policy plan --policy {long} --detailed-exitcode"
    )


def test_demo_keep_leaves_a_folder_whose_commands_run_again(tmp_path, monkeypatch):
    """`demo --keep DIR`: the folder holds the policy, the fake cloud as the demo left it and
    the variables that reach it; served again as the demo says, the plan it printed runs and
    has nothing left to do."""
    from snapshot_policy.sandbox import Sandbox
    from snapshot_policy.sandbox.server import read_state

    monkeypatch.chdir(tmp_path)
    folder = Path("kept")  # as a person names it: `demo --keep kept`
    lines: list[str] = []
    assert run_demo(main, lambda: DEMO_AT, lines.append, action_seconds=0.05, keep=folder) == 0
    text = "\n".join(lines)
    pasted = text.replace(
        " \\\n    ", " "
    )  # a command continued past 80 columns, as a shell reads it
    assert f"$ snapshot-policy plan --policy {folder}/snapshot-policy.yaml" in pasted
    again = pasted[pasted.index("and in another:") :]
    assert f"  snapshot-policy status --policy {folder}/snapshot-policy.yaml\n" in again
    assert f"  snapshot-policy drill --policy {folder}/snapshot-policy.yaml --target web" in again
    port = int(re.search(r"snapshot-policy sandbox --port (\d+) --state ", text)[1])
    assert f"--state {folder}/sandbox-state.json" in text
    assert f"  . {folder}/demo.env" in text
    assert all(len(line) <= 80 for line in text.splitlines())
    env_file = folder / "demo.env"
    assert oct(env_file.stat().st_mode & 0o777) == oct(0o600)  # it holds (fake) tokens
    exported = dict(
        line.removeprefix("export ").split("=", 1)
        for line in env_file.read_text().splitlines()
        if line.startswith("export ")
    )
    assert exported["DEMO_HCLOUD_TOKEN"] == TOKENS["DEMO_HCLOUD_TOKEN"]
    assert exported["HCLOUD_ENDPOINT"] == f"http://127.0.0.1:{port}/v1"
    for name, value in exported.items():
        monkeypatch.setenv(name, value)
    state = read_state(str(folder / "sandbox-state.json"))
    policy = ["--policy", str(folder / "snapshot-policy.yaml")]
    later = DEMO_AT + timedelta(minutes=5)
    with Sandbox(state, clock=lambda: later, boot_seconds=0.05, port=port) as sandbox:
        assert main(["plan", *policy, "--detailed-exitcode"], clock=lambda: later) == 0
        assert main(["status", *policy], clock=lambda: later) == 0
        assert main(["drill", *policy, "--target", "web"], clock=lambda: later) == 0
        made = [
            r for r in sandbox.requests() if (r["method"], r["path"]) == ("POST", "/v2/droplets")
        ]
        assert len(made) == 2  # the kept cloud restores, as in the demo
        assert all(not s["name"].startswith("drill-") for s in sandbox.dump_state()["servers"])


def test_demo_keep_refuses_a_folder_that_holds_something(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    lines: list[str] = []
    assert run_demo(main, lambda: DEMO_AT, lines.append, keep=tmp_path) == 1
    assert "not empty" in lines[0] and (tmp_path / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_demo_keep_through_the_command_line(tmp_path, capsys):
    folder = tmp_path / "d"
    (folder / "x").mkdir(parents=True)
    assert main(["demo", "--keep", str(folder)]) == 1
    assert "not empty" in capsys.readouterr().out
