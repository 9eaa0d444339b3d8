"""`status` through the CLI against the sandbox, both layouts: what it prints, its JSON, its
exit codes, the metrics textfile, and that it changes nothing (issue 22, item 1). The clock
is the tests' (tests/e2e/conftest.py), the seeded snapshots dated from it."""

from __future__ import annotations

import json
import os

import pytest
from prometheus_client.parser import text_string_to_metric_families

from snapshot_policy.cli import main
from snapshot_policy.state.runstate import LastDrill, LastRun, RunState
from tests.e2e.cloud import legacy_name, made
from tests.e2e.policies import ACCOUNTS, DB, DEBUG_LOG, WEB, policy_yaml

WEB_10 = {"name": "web10", "account": "do", "ids": [3164445], "retention": {"keep_last": 3}}
LATE = "! late: a snapshot has been due for more than 1 h 0 min (every 24h)"


@pytest.fixture
def policy(tmp_path, sandbox, tokens):
    """web-1, web-10 and db-1 each covered, snapshotted nightly, snapshots.py's names adopted."""
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(policy_yaml(WEB, DB, WEB_10, settings=DEBUG_LOG))
    return path


def status(*argv: str, clock) -> int:
    return main(["status", *argv], clock=clock)


def files(folder) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_all_well_exits_0_reads_only_and_writes_nothing(policy, sandbox, capsys, clock):
    before = files(policy.parent)
    sandbox.clear_requests()
    assert status("--policy", str(policy), clock=clock) == 0
    out = capsys.readouterr().out
    newest = legacy_name("web-1", clock.now, 1)
    assert "web: web-1 (digitalocean server 3164444, account do): ok\n" in out
    assert f"  newest {newest} (id 100000001, " in out and ", 1 d 0 h old)\n" in out
    assert "  snapshots: 5 managed; billed: 6 snapshots, 15 GB, USD 0.90 a month\n" in out
    assert "  last run: never recorded\n" in out and "drill" not in out  # none configured
    assert "  do (digitalocean): 2 server(s), 0 uncovered, 7 snapshot(s)\n" in out
    assert out.endswith("Status: 3 ok, 0 late, 0 without a snapshot of 3 server(s). Exit 0.\n")
    assert all(len(line) <= 80 for line in out.splitlines())
    assert {r["method"] for r in sandbox.requests()} == {"GET"}
    assert files(policy.parent) == before  # no log, no journal, no run state, no lock


def test_late_exits_2_until_late_after_allows_it(policy, sandbox, capsys, clock):
    clock.advance(hours=2)  # the newest snapshots are a day and two hours old
    assert status("--policy", str(policy), clock=clock) == 2
    out = capsys.readouterr().out
    assert "web: web-1 (digitalocean server 3164444, account do): LATE\n" in out
    assert f"  {LATE}\n" in out
    assert out.endswith("Status: 0 ok, 3 late, 0 without a snapshot of 3 server(s). Exit 2.\n")
    assert status("--policy", str(policy), "--late-after", "3h", clock=clock) == 0
    capsys.readouterr()
    assert status("--policy", str(policy), "--late-after", "soon", clock=clock) == 1
    assert "Invalid value for '--late-after'" in capsys.readouterr().err


def test_none_and_uncovered_exit_2_and_say_so_in_text_and_json(
    tmp_path, sandbox, tokens, capsys, clock
):
    """web does not adopt snapshots.py's names: it has no managed snapshot; web-10 has no
    target at all."""
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(policy_yaml({**WEB, "adopt_legacy_names": False}, DB, settings=DEBUG_LOG))
    assert status("--policy", str(policy), clock=clock) == 2
    out = capsys.readouterr().out
    assert "web: web-1 (digitalocean server 3164444, account do): NO SNAPSHOT\n" in out
    assert "  ! no managed snapshot\n" in out
    assert "  do (digitalocean): 2 server(s), 1 uncovered, 7 snapshot(s)\n" in out
    assert "    ! 1 server(s) no target covers: web-10 (3164445)\n" in out
    assert out.endswith(
        "Status: 1 ok, 0 late, 1 without a snapshot of 2 server(s).\n"
        "1 uncovered server(s). Exit 2.\n"
    )
    assert status("--policy", str(policy), "--output", "json", clock=clock) == 2
    document = json.loads(capsys.readouterr().out)
    assert document["exit_code"] == 2 and document["format_version"] == 1
    web = next(t for t in document["targets"] if t["target"] == "web")
    db = next(t for t in document["targets"] if t["target"] == "db")
    assert (web["state"], web["newest"], web["managed_snapshots"]) == ("none", None, 0)
    assert web["storage"]["snapshots"] == 6 and web["problems"] == ["no managed snapshot"]
    assert db["state"] == "ok" and db["newest"]["name"] == legacy_name("db-1", clock.now, 1)
    assert db["newest"]["age_seconds"] == int((clock.now - made(clock.now, 1)).total_seconds())
    assert db["last_run"] is None and db["last_drill"] is None and db["newest_verified"] is None
    do = next(a for a in document["accounts"] if a["account"] == "do")
    assert do["uncovered"] == [{"id": "3164445", "name": "web-10"}]
    assert (do["servers"], do["snapshots"], do["snapshot_limit"]) == (2, 7, None)
    assert document["summary"] == {
        "servers": 2,
        "ok": 1,
        "late": 0,
        "none": 1,
        "with_problems": 1,
        "uncovered": 1,
        "failed_targets": 0,
    }


def test_target_option_judges_no_uncovered_server(policy, sandbox, capsys, clock):
    assert status("--policy", str(policy), "--target", "db", clock=clock) == 0
    out = capsys.readouterr().out
    assert "web:" not in out and "db: db-1" in out
    assert "  hz (hetzner): 1 server(s), uncovered not judged (--target), 6 snapshot(s)\n" in out


def test_an_unreadable_account_exits_1(policy, sandbox, capsys, clock, monkeypatch):
    monkeypatch.setenv("TEST_DO_TOKEN", "wrong-token")
    assert status("--policy", str(policy), clock=clock) == 1
    out = capsys.readouterr().out
    assert "web: FAILED: cannot read account do: digitalocean" in out and "401" in out
    assert "  do (digitalocean): cannot be read: digitalocean" in out
    assert "wrong-token" not in out
    assert "db: db-1 (hetzner server 4711, account hz): ok" in out


def test_a_failed_last_run_and_a_failed_drill_from_the_run_state_exit_2(
    policy, sandbox, capsys, clock
):
    state = RunState(policy.parent / "run" / "snapshot-policy.state.json", clock.now)
    state.record_run("hz", "4711", "db", LastRun(clock.now, False, "wait for snapshot failed"))
    state.record_run("do", "3164444", "web", LastRun(clock.now, True))
    state.record_drill(
        "do", "3164444", "web", LastDrill(clock.now, False, "100000001", 40.2, "probe exited 3")
    )
    state.save()
    assert status("--policy", str(policy), clock=clock) == 2
    out = capsys.readouterr().out
    when = clock.now.strftime("%Y-%m-%dT%H:%MZ")
    assert f"  last run: {when}, FAILED\n" in out
    assert f"  ! last run {clock.now:%Y-%m-%d %H:%M} UTC failed: wait for snapshot failed\n" in out
    assert f"  last run: {when}, ok\n" in out
    assert f"  last drill: {when} (FAILED, restored in 40 s, from the run state)\n" in out
    assert f"  ! last restore drill {clock.now:%Y-%m-%d %H:%M} UTC failed: probe exited 3\n" in out
    assert out.endswith("3 server(s).\nExit 2.\n") and ", 2 with a failed run or drill" in out


def test_metrics_file_of_status_and_apply(policy, sandbox, capsys, clock, tmp_path):
    metrics = tmp_path / "snapshot_policy.prom"
    assert status("--policy", str(policy), "--metrics-file", str(metrics), clock=clock) == 0
    values = samples(metrics)
    labels = (("account", "do"), ("provider", "digitalocean"), ("server_id", "3164444"))
    web = (*labels, ("target", "web"))
    age = (clock.now - made(clock.now, 1)).total_seconds()
    assert values[("snapshot_policy_newest_snapshot_age_seconds", web)] == age
    assert values[("snapshot_policy_snapshot_late", web)] == 0
    assert values[("snapshot_policy_uncovered_servers", (("account", "do"),))] == 0
    assert values[("snapshot_policy_account_snapshots", (("account", "hz"),))] == 6
    assert values[("snapshot_policy_status_exit_code", ())] == 0
    assert oct(os.stat(metrics).st_mode & 0o777) == "0o644"

    assert (
        main(["apply", "--policy", str(policy), "--metrics-file", str(metrics)], clock=clock) == 0
    )
    capsys.readouterr()
    values = samples(metrics)
    assert values[("snapshot_policy_last_run_exit_code", ())] == 0
    assert values[("snapshot_policy_newest_snapshot_age_seconds", web)] < 60  # made by apply
    assert (
        values[("snapshot_policy_account_snapshots", (("account", "do"),))] == 6
    )  # 7, 2 made, 3 deleted
    clock.advance(hours=26)  # a day later, nobody ran apply
    assert status("--policy", str(policy), "--metrics-file", str(metrics), clock=clock) == 2
    values = samples(metrics)
    assert values[("snapshot_policy_snapshot_late", web)] == 1
    assert values[("snapshot_policy_status_exit_code", ())] == 2
    assert values[("snapshot_policy_last_run_exit_code", ())] == 0  # apply's gauges kept


def samples(path) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(path.read_text())
        for sample in family.samples
    }


def test_legacy_layout_every_run_schedule_late_after_25_hours(
    legacy_layout, sandbox, capsys, clock, monkeypatch
):
    """A snapshots.py folder: each file a target, snapshotted every run; the status writes
    nothing in it (no cronjob.log line, no log file)."""
    monkeypatch.chdir(legacy_layout)
    before = files(legacy_layout)
    assert status(clock=clock) == 2  # web-10 has no file
    out = capsys.readouterr().out
    assert "digitalocean_droplet1: web-1 (digitalocean server 3164444, account\n" in out
    assert "  schedule every run: a snapshot is made every run\n" in out
    assert "    ! 1 server(s) no target covers: web-10 (3164445)\n" in out
    assert files(legacy_layout) == before
    clock.advance(hours=2)  # the newest are a day and two hours old
    assert status("--output", "json", clock=clock) == 2
    document = json.loads(capsys.readouterr().out)
    assert {t["target"]: t["state"] for t in document["targets"]} == {
        "digitalocean_droplet1": "late",
        "hetzner_cloud_server1": "late",
    }
    assert document["targets"][0]["problems"][0].startswith(
        "late: the newest snapshot is 1 d 2 h old, older than 1 d 1 h"
    )


def test_legacy_layout_all_covered_exits_0(legacy_layout, sandbox, capsys, clock, monkeypatch):
    droplet = json.loads((legacy_layout / "configs" / "digitalocean_droplet1.json").read_text())
    droplet["digitalocean_droplet"].update(id="3164445", name="web-10")
    (legacy_layout / "configs" / "digitalocean_droplet2.json").write_text(json.dumps(droplet))
    monkeypatch.chdir(legacy_layout)
    assert status(clock=clock) == 0, capsys.readouterr()
    assert capsys.readouterr().out.endswith(
        "Status: 3 ok, 0 late, 0 without a snapshot of 3 server(s). Exit 0.\n"
    )


def test_legacy_layout_with_a_broken_file_exits_1(
    legacy_layout, sandbox, capsys, clock, monkeypatch
):
    (legacy_layout / "configs" / "hetzner_cloud_server1.json").write_text("{not json")
    monkeypatch.chdir(legacy_layout)
    assert status(clock=clock) == 1
    captured = capsys.readouterr()
    assert "hetzner_cloud_server1: FAILED: " in captured.out
    assert "digitalocean_droplet1: web-1 (digitalocean server 3164444" in captured.out


def test_ignored_servers_are_not_uncovered_a_label_selector_read_by_each_cloud(
    tmp_path, sandbox, tokens, capsys, clock, monkeypatch
):
    sandbox.state.add_server("do", "ci-runner", id=3164446, tags=["ephemeral"])
    sandbox.state.add_server("hz", "ci-runner-2", id=4712, labels={"role": "ephemeral"})
    sandbox.state.add_server("hz", "scratch", id=4713)
    policy = tmp_path / "snapshot-policy.yaml"
    ignore = [
        {"names": ["web-10"]},
        {"label_selector": "ephemeral"},  # a DigitalOcean tag
        {"label_selector": "role=ephemeral"},  # a Hetzner label selector
    ]
    settings = {**DEBUG_LOG, "uncovered": {"ignore": ignore}}
    policy.write_text(policy_yaml(WEB, DB, settings=settings))
    sandbox.clear_requests()
    assert status("--policy", str(policy), clock=clock) == 2
    out = capsys.readouterr().out
    assert "  do (digitalocean): 3 server(s), 0 uncovered (2 ignored), 7 snapshot(s)\n" in out
    assert "  hz (hetzner): 3 server(s), 1 uncovered (1 ignored), 6 snapshot(s)\n" in out
    assert "    ! 1 server(s) no target covers: scratch (4713)\n" in out
    requests = sandbox.requests()
    assert {r["method"] for r in requests} == {"GET"}
    droplets = [str(r.get("query")) for r in requests if r["path"] == "/v2/droplets"]
    assert any("ephemeral" in q for q in droplets), droplets  # the tag, listed by the cloud


def test_over_the_snapshot_limit_exits_2(tmp_path, sandbox, tokens, capsys, clock):
    policy = tmp_path / "snapshot-policy.yaml"
    accounts = {
        "do": {**ACCOUNTS["do"], "snapshot_limit": 8},
        "hz": {**ACCOUNTS["hz"], "snapshot_limit": 5},
    }
    policy.write_text(policy_yaml(WEB, DB, WEB_10, accounts=accounts, settings=DEBUG_LOG))
    assert status("--policy", str(policy), clock=clock) == 2
    out = capsys.readouterr().out
    assert "  do (digitalocean): 2 server(s), 0 uncovered, 7 snapshot(s) of a limit of 8\n" in out
    assert "  hz (hetzner): 1 server(s), 0 uncovered, 6 snapshot(s) of a limit of 5\n" in out
    assert "    ! 6 snapshots, over the limit of 5 set in accounts.hz.snapshot_limit\n" in out
    assert out.endswith("1 account(s) over their snapshot limit. Exit 2.\n")
    assert status("--policy", str(policy), "--output", "json", clock=clock) == 2
    accounts = json.loads(capsys.readouterr().out)["accounts"]
    assert [(a["account"], a["snapshot_limit"], a["problems"] != []) for a in accounts] == [
        ("do", 8, False),
        ("hz", 5, True),
    ]
