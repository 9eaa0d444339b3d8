"""Restore drills through the command line against the sandbox (issue 22, item 2): a drill
restores a target's newest snapshot to a throwaway server, waits until it runs, probes it and
deletes it — always — and records the result on the snapshot, in the run state, the audit
log, the report and the notifications (docs/promises.md §5, invariant 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snapshot_policy.cli import main
from tests.e2e.cloud import unwrapped
from tests.e2e.policies import ACCOUNTS, DB, NIGHTLY, WEB, policy_yaml

DRILL_TAG = "snapshot-policy-drill"


def write_policy(folder: Path, drill: dict | None = None, targets=None, **extra) -> Path:
    """web-1 (DigitalOcean) and db-1 (Hetzner), each drilled weekly with a probe that writes
    its environment to probe-<target>.env."""
    drill = drill if drill is not None else {}

    def drilled(name, account, server_id):
        probe = ["sh", "-c", f"env > {folder}/probe-{name}.env"]
        return {
            "name": name,
            "account": account,
            "ids": [server_id],
            "retention": {"keep_last": 10},
            "drill": {"every": "7d", "probe": probe, "boot_timeout": 20, **drill},
        }

    targets = targets or [drilled("web", "do", 3164444), drilled("db", "hz", 4711)]
    policy = folder / "policy.yaml"
    policy.write_text(
        policy_yaml(
            *targets,
            accounts=ACCOUNTS,
            defaults=NIGHTLY,
            settings={"lock_file": "run/lock", "audit_log": "run/audit.jsonl", **extra},
        )
    )
    return policy


def drill_servers(sandbox) -> list:
    with sandbox.state.lock:
        return [
            s
            for s in sandbox.state.servers.values()
            if DRILL_TAG in s.tags or s.labels.get("snapshot-policy/drill") == "true"
        ]


def audit(folder: Path) -> list[dict]:
    path = folder / "run" / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def journal(folder: Path) -> list[dict]:
    path = folder / "run" / "lock.journal.json"
    return json.loads(path.read_text()) if path.exists() else []


def state(folder: Path) -> dict:
    return json.loads((folder / "run" / "lock.state.json").read_text())


@pytest.fixture
def booting(sandbox):
    sandbox.state.boot_seconds = 0.2
    return sandbox


def drill(policy: Path, clock, *args: str) -> int:
    return main(["drill", "--policy", str(policy), *args], clock=clock)


def snapshot(sandbox, name_start: str):
    """The newest sandbox snapshot whose name starts so."""
    with sandbox.state.lock:
        found = [s for s in sandbox.state.snapshots.values() if s.name.startswith(name_start)]
    return max(found, key=lambda s: s.created)


PUBLIC = {"public_network": True}


def test_a_drill_that_passes_leaves_no_server_and_records_its_result_everywhere(
    booting, tokens, tmp_path, clock, capsys
):
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock) == 0
    out, err = map(unwrapped, capsys.readouterr())  # drill's lines fit 80 columns
    assert "web: web-1 (digitalocean server 3164444): drill of web-1-" in out
    assert "db: db-1 (hetzner server 4711): drill of db-1-" in out and "passed" in out
    assert "2 drill(s): 2 passed, 0 failed." in err
    assert drill_servers(booting) == []  # deleted, both
    made = [
        r
        for r in booting.requests()
        if r["method"] == "POST" and r["path"] in ("/v2/droplets", "/v1/servers")
    ]
    assert len(made) == 2 and all(r["status"] in (201, 202) for r in made)
    assert journal(tmp_path) == []  # crossed off once the deletion was confirmed
    day = clock.now.date().isoformat()
    assert f"snapshot-policy-drilled-passed-{day}" in snapshot(booting, "web-1-").tags
    assert snapshot(booting, "db-1-").labels["snapshot-policy/drilled"] == f"passed-{day}"
    drills = {entry[2]: entry[3] for entry in state(tmp_path)["last_drills"]}
    assert drills["web"]["passed"] and drills["db"]["passed"]
    assert drills["db"]["snapshot_id"] == str(snapshot(booting, "db-1-").id)
    events = [(line["event"], line["target"]) for line in audit(tmp_path)]
    for target in ("web", "db"):
        assert [e for e, t in events if t == target] == [
            "drill server created",
            "drill server deleted",
            "drill passed",
        ]
    lines = (tmp_path / "probe-db.env").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if "=" in line)
    assert env["SNAPSHOT_POLICY_DRILL_SERVER_NAME"].startswith("drill-db-4711-")
    assert env["SNAPSHOT_POLICY_DRILL_SNAPSHOT_ID"] == str(snapshot(booting, "db-1-").id)
    assert env["SNAPSHOT_POLICY_DRILL_PUBLIC_IP"] and env["SNAPSHOT_POLICY_DRILL_TARGET"] == "db"
    assert "TEST_HZ_TOKEN" not in env  # the probe's environment is minimal, as a hook's
    assert env["SNAPSHOT_POLICY_SERVER_ID"] == "4711" and env["SNAPSHOT_POLICY_TARGET"] == "db"
    assert "SNAPSHOT_POLICY_SNAPSHOT" not in env  # a hook's; the probe's is _DRILL_SNAPSHOT_ID


def test_a_dry_run_shows_the_drills_and_changes_nothing(booting, tokens, tmp_path, clock, capsys):
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "Dry run: drill would do the following; nothing was changed." in out
    assert "db: db-1 (hetzner server 4711, account hz)" in out
    assert "drill every 7d: due — about EUR " in out and "to restore db-1-" in out
    assert not [r for r in booting.requests() if r["method"] != "GET"]
    assert journal(tmp_path) == []


def test_a_target_without_a_drill_is_refused_by_name(booting, tokens, tmp_path, clock, capsys):
    policy = write_policy(tmp_path, targets=[{**WEB, "retention": {"keep_last": 3}}])
    assert drill(policy, clock, "--target", "web") == 1
    assert "target web has no drill" in capsys.readouterr().err


def test_a_refused_create_fails_the_drill_and_leaves_nothing(
    booting, tokens, tmp_path, clock, capsys
):
    booting.inject("error", service="hetzner", method="POST", path="^/v1/servers$", status=422)
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock, "--target", "db") == 2
    out = unwrapped(capsys.readouterr().out)
    assert "FAILED at create: the cloud refused the drill server" in out
    assert drill_servers(booting) == [] and journal(tmp_path) == []
    assert "snapshot-policy/drilled" not in snapshot(booting, "db-1-").labels  # says nothing of it
    (record,) = [entry[3] for entry in state(tmp_path)["last_drills"]]
    assert not record["passed"] and "refused" in record["error"]


@pytest.mark.parametrize(
    "fault, words",
    [
        ({"kind": "boot_fail"}, "did not boot"),
        ({"kind": "slow_boot", "seconds": 30}, "was not running 1s after the create"),
    ],
    ids=["boot_fail", "slow_boot"],
)
def test_a_server_that_does_not_boot_is_deleted_and_its_snapshot_marked_failed(
    booting, tokens, tmp_path, clock, capsys, fault, words
):
    booting.inject(fault.pop("kind"), service="hetzner", **fault)
    policy = write_policy(tmp_path, {**PUBLIC, "boot_timeout": 1})
    assert drill(policy, clock, "--target", "db") == 2
    out = unwrapped(capsys.readouterr().out)
    assert "FAILED at boot" in out and words in out
    assert drill_servers(booting) == [] and journal(tmp_path) == []
    day = clock.now.date().isoformat()
    assert snapshot(booting, "db-1-").labels["snapshot-policy/drilled"] == f"failed-{day}"
    assert [line["event"] for line in audit(tmp_path)][-1] == "drill failed"


def test_a_failing_probe_fails_the_drill_and_the_server_is_deleted(
    booting, tokens, tmp_path, clock, capsys
):
    policy = write_policy(tmp_path, {"probe": ["sh", "-c", "echo no answer on 5432; exit 3"]})
    assert drill(policy, clock, "--target", "web") == 2
    out = unwrapped(capsys.readouterr().out)
    assert "FAILED at probe, restored in " in out
    assert "the probe failed: probe failed (exit status 3)" in out
    assert drill_servers(booting) == [] and journal(tmp_path) == []
    day = clock.now.date().isoformat()
    assert f"snapshot-policy-drilled-failed-{day}" in snapshot(booting, "web-1-").tags


def test_a_failed_delete_leaves_the_server_to_the_next_run_which_deletes_and_audits_it(
    booting, tokens, tmp_path, clock, capsys
):
    booting.inject(
        "error",
        service="hetzner",
        method="DELETE",
        path=r"^/v1/servers/\d+$",
        status=403,
        count=1,
    )
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock, "--target", "db") == 2
    out = unwrapped(capsys.readouterr().out)
    assert "passed" in out and "its server is NOT deleted yet" in out
    (left,) = drill_servers(booting)
    (entry,) = journal(tmp_path)
    assert entry["name"] == left.name and entry["drill_server"] == str(left.id)
    clock.advance(hours=1)
    assert main(["apply", "--policy", str(policy), "--target", "db"], clock=clock) == 0
    assert drill_servers(booting) == [] and journal(tmp_path) == []
    deleted = [line for line in audit(tmp_path) if line["event"] == "drill server deleted"]
    assert deleted[-1]["drill_server_id"] == str(left.id)
    assert deleted[-1]["reason"].startswith("left by an earlier run")


@pytest.mark.parametrize(
    "service, path, target",
    [("digitalocean", "/v2/droplets", "web"), ("hetzner", "/v1/servers", "db")],
)
def test_a_lost_reply_to_the_create_finds_the_server_and_deletes_it(
    booting, tokens, tmp_path, clock, capsys, service, path, target
):
    booting.inject("lose_reply", service=service, method="POST", path=f"^{path}$", count=1)
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock, "--target", target) == 0, capsys.readouterr()
    assert drill_servers(booting) == [] and journal(tmp_path) == []
    made = [
        r
        for r in booting.requests(service)
        if r["method"] == "POST" and r["path"] == path and r["status"] in (201, 202)
    ]
    assert len(made) == 1  # never a second server


def test_apply_runs_the_due_drills_after_its_snapshots_and_tells_each_one(
    booting, tokens, tmp_path, clock, capsys
):
    folder = tmp_path
    policy = folder / "policy.yaml"
    db = {
        **DB,
        "drill": {"every": "7d", "public_network": True, "boot_timeout": 20},
    }
    policy.write_text(
        policy_yaml(
            db,
            accounts={"hz": ACCOUNTS["hz"]},
            notifications={
                "ops": {
                    "type": "telegram",
                    "bot_token": "env:TEST_BOT_TOKEN",
                    "chat_id": "-100123",
                    "retries": 0,
                },
                "hook": {"type": "webhook", "url": booting.webhook_url("n8n"), "retries": 0},
            },
            defaults={**NIGHTLY, "notify": ["ops", "hook"]},
            settings={"lock_file": "run/lock", "audit_log": "run/audit.jsonl"},
        )
    )
    report = folder / "report.json"
    assert main(["apply", "--policy", str(policy), "--report", str(report)], clock=clock) == 0
    out, err = map(unwrapped, capsys.readouterr())
    new = snapshot(booting, "db-1-")
    assert (
        f"db: db-1 (hetzner server 4711): drill of {new.name} passed, restored in " in out
    )  # apply's end names the drill, the server it restored to, and that it is gone
    assert "drill-db-4711-" in out and out.rstrip().endswith("; its server is deleted")
    assert "; 1 drill(s): 1 passed, 0 failed" in err
    requests = [(r["method"], r["path"]) for r in booting.requests("hetzner")]
    made = requests.index(("POST", "/v1/servers/4711/actions/create_image"))
    assert requests.index(("POST", "/v1/servers")) > made  # the drill after the snapshot
    new = snapshot(booting, "db-1-")
    assert new.labels["snapshot-policy/drilled"].startswith("passed-")  # today's snapshot
    (drilled,) = json.loads(report.read_text())["drills"]
    assert drilled["passed"] and drilled["server_deleted"] and drilled["stage"] == "done"
    assert drilled["snapshot"]["id"] == str(new.id) and drilled["target"] == "db"
    texts = [m["text"] for m in booting.telegram_messages()]
    assert len(texts) == 2 and "Restore drill passed" in texts[1] and new.name in texts[1]
    payloads = [d["json"] for d in booting.webhook_deliveries("n8n")]
    assert payloads[1]["event"] == "drill" and payloads[1]["passed"] is True
    assert drill_servers(booting) == []
    runs = {entry[2]: entry[3] for entry in state(folder)["last_runs"]}
    assert runs["db"]["ok"]
    clock.advance(days=1, minutes=1)
    booting.clear_requests()
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    assert ("POST", "/v1/servers") not in [
        (r["method"], r["path"]) for r in booting.requests("hetzner")
    ]


def test_an_apply_whose_only_news_is_a_drill_prints_it(booting, tokens, tmp_path, clock, capsys):
    """A run with nothing to do prints nothing (README "Scheduling"); a drill is news."""
    undrilled = {**WEB, "retention": {"keep_last": 10}}
    policy = write_policy(tmp_path, PUBLIC, targets=[undrilled])
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    clock.advance(minutes=5)
    capsys.readouterr()
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    assert capsys.readouterr() == ("", "")  # nothing due: silent
    policy = write_policy(tmp_path, PUBLIC)
    clock.advance(minutes=5)
    assert main(["apply", "--policy", str(policy), "--target", "web"], clock=clock) == 0
    out, err = map(unwrapped, capsys.readouterr())
    assert "no new snapshot, deleted 0" in out
    assert "drill of web-1-" in out and "passed, restored in " in out
    assert "0 created, 0 deleted, 0 failed in " in err and "; 1 drill(s): 1 passed" in err


def test_a_drill_marked_server_the_journal_does_not_name_is_reported_never_deleted(
    booting, tokens, tmp_path, clock, capsys
):
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock, "--target", "db", "--dry-run") == 0  # makes no journal entry
    owner = _owner(policy)
    with booting.state.lock:
        stranger = booting.state.add_server(
            "hz",
            "drill-db-4711-20200101000000",
            labels={
                "managed-by": "snapshot-policy",
                "snapshot-policy/drill": "true",
                "snapshot-policy/owner": owner,
            },
        )
    capsys.readouterr()
    assert drill(policy, clock, "--target", "db", "-v") == 0
    assert [s.id for s in drill_servers(booting)] == [stranger.id]
    err = capsys.readouterr().err
    assert f"server drill-db-4711-20200101000000 ({stranger.id}) carries this configuration's" in (
        err
    )
    assert "delete it yourself if it is yours" in err
    assert not [
        r
        for r in booting.requests("hetzner")
        if r["method"] == "DELETE" and r["path"] == f"/v1/servers/{stranger.id}"
    ]


def _owner(policy: Path) -> str:
    from snapshot_policy import config

    return config.load(policy, None, ()).settings.owner


# -- restore ---------------------------------------------------------------------------------


def restore(policy: Path, clock, *args: str) -> int:
    return main(["restore", "--policy", str(policy), *args], clock=clock)


def test_restore_makes_a_new_server_and_deletes_nothing(booting, tokens, tmp_path, clock, capsys):
    policy = write_policy(tmp_path, PUBLIC)
    with booting.state.lock:
        before = set(booting.state.servers)
    assert restore(policy, clock, "--target", "db", "--name", "db-1-restored") == 0
    out = capsys.readouterr().out
    with booting.state.lock:
        (new,) = [booting.state.servers[i] for i in set(booting.state.servers) - before]
    assert new.name == "db-1-restored" and new.status == "running"
    assert new.image_id == snapshot(booting, "db-1-").id
    assert "snapshot-policy/drill" not in new.labels  # no drill mark: never deleted by the tool
    assert f"id:      {new.id}" in out and "Reach it with: ssh root@" in out
    assert not [r for r in booting.requests() if r["method"] == "DELETE"]
    assert not [r for r in booting.requests() if "rebuild" in r["path"]]
    assert [line["event"] for line in audit(tmp_path)] == ["restore server created"]
    # a drill later leaves it alone
    assert drill(policy, clock, "--target", "db") == 0
    with booting.state.lock:
        assert new.id in booting.state.servers


def test_restore_refuses_a_name_the_account_already_has(booting, tokens, tmp_path, clock, capsys):
    policy = write_policy(tmp_path, PUBLIC)
    assert restore(policy, clock, "--target", "web", "--name", "web-10") == 1
    assert "a server named web-10 exists in account do" in capsys.readouterr().err
    assert not [r for r in booting.requests() if r["method"] in ("POST", "DELETE")]


def test_restore_of_a_chosen_snapshot_type_and_region(booting, tokens, tmp_path, clock, capsys):
    policy = write_policy(tmp_path)
    chosen = snapshot(booting, "web-1-before-upgrade")
    args = ["--target", "web", "--snapshot", str(chosen.id), "--name", "web-copy"]
    assert restore(policy, clock, *args, "--region", "nowhere") == 1
    assert "offered in nowhere; leave --region out to take nyc" in capsys.readouterr().err
    assert restore(policy, clock, *args) == 0
    with booting.state.lock:
        (copy,) = [s for s in booting.state.servers.values() if s.name == "web-copy"]
    assert copy.image_id == chosen.id


def test_restore_needs_one_target(booting, tokens, tmp_path, clock, capsys):
    policy = write_policy(tmp_path)
    assert restore(policy, clock, "--name", "x") == 1
    assert "restore needs exactly one --target T" in capsys.readouterr().err


def test_at_most_drills_per_account_servers_exist_at_once_with_one_listing_a_round(
    booting, tokens, tmp_path, clock, capsys
):
    """Five servers on Hetzner, drills_per_account 2: the sandbox's request log never shows
    more than two drill servers made and not yet deleted, and the boots are followed by
    listings of the drill servers (label selector), never by reading each server."""
    from tests.e2e.cloud import legacy_name

    targets = []
    with booting.state.lock:
        for n in range(5):
            server = booting.state.add_server("hz", f"app-{n}", id=5000 + n)
            booting.state.add_snapshot(
                "hz", legacy_name(f"app-{n}", clock.now, 1), server_id=server.id
            )
            targets.append(
                {
                    "name": f"app-{n}",
                    "account": "hz",
                    "ids": [server.id],
                    "retention": {"keep_last": 3},
                    "drill": {"every": "7d", "public_network": True},
                }
            )
    policy = write_policy(tmp_path, targets=targets, drills_per_account=2)
    assert drill(policy, clock) == 0, capsys.readouterr()
    alive = most = 0
    for request in booting.requests("hetzner"):
        if request["method"] == "POST" and request["path"] == "/v1/servers":
            alive += 1
            most = max(most, alive)
        elif request["method"] == "DELETE" and request["path"].startswith("/v1/servers/"):
            alive -= 1
    assert most == 2 and alive == 0
    assert drill_servers(booting) == []
    reads = [
        r["path"]
        for r in booting.requests("hetzner")
        if r["method"] == "GET" and r["path"].startswith("/v1/servers/")
    ]
    deletes = [r for r in booting.requests("hetzner") if r["method"] == "DELETE"]
    assert len(reads) == len(deletes) == 5  # each read is the re-read right before its DELETE


def test_a_failed_drill_makes_apply_exit_2_and_keeps_its_snapshots(
    booting, tokens, tmp_path, clock, capsys
):
    policy = write_policy(tmp_path, {"probe": ["false"]})
    assert main(["apply", "--policy", str(policy), "--target", "web"], clock=clock) == 2
    out, err = map(unwrapped, capsys.readouterr())
    assert f"drill of {snapshot(booting, 'web-1-').name} FAILED at probe, restored in " in out
    assert "1 drill(s): 0 passed, 1 failed (web)" in err
    assert drill_servers(booting) == []
    runs = {entry[2]: entry[3] for entry in state(tmp_path)["last_runs"]}
    assert runs["web"]["ok"]  # the snapshots did what they should
    (record,) = [entry[3] for entry in state(tmp_path)["last_drills"]]
    assert not record["passed"] and "the probe failed" in record["error"]


def test_a_drill_server_deleted_by_someone_else_while_it_boots_fails_the_drill_cleanly(
    booting, tokens, tmp_path, clock, capsys
):
    import threading
    import time

    booting.inject("slow_boot", service="hetzner", seconds=30)
    policy = write_policy(tmp_path, {**PUBLIC, "boot_timeout": 60})

    def remove_it():
        while not drill_servers(booting):
            time.sleep(0.02)  # a sleep: a timed wait never runs out under libfaketime
        with booting.state.lock:
            (server,) = drill_servers(booting)
            del booting.state.servers[server.id]

    remover = threading.Thread(target=remove_it)
    remover.start()
    assert drill(policy, clock, "--target", "db") == 2
    remover.join()
    assert "did not boot: it no longer exists" in unwrapped(capsys.readouterr().out)
    assert journal(tmp_path) == []  # gone for certain: crossed off


def test_a_leftover_renamed_since_is_someone_elses_now_and_never_deleted(
    booting, tokens, tmp_path, clock, capsys
):
    booting.inject(
        "error", service="hetzner", method="DELETE", path=r"^/v1/servers/\d+$", status=403, count=1
    )
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock, "--target", "db") == 2
    (left,) = drill_servers(booting)
    with booting.state.lock:
        left.name = "db-1-kept-for-debugging"
    clock.advance(hours=1)
    capsys.readouterr()
    assert drill(policy, clock, "--target", "db", "-v") == 0  # its own drill still runs
    assert "renamed from drill-db-4711-" in capsys.readouterr().err
    assert [s.id for s in drill_servers(booting)] == [left.id]
    assert [e["drill_server"] for e in journal(tmp_path)] == [str(left.id)]  # kept, reported
    assert not [
        r
        for r in booting.requests("hetzner")
        if r["method"] == "DELETE" and r["path"] == f"/v1/servers/{left.id}" and r["status"] < 400
    ]


def test_the_drills_budget_counts_every_request_each_account_makes(
    booting, tokens, tmp_path, clock, capsys, monkeypatch
):
    """A delete reads the server first and a Hetzner mark reads the labels first: the
    account's request budget counts what the sandbox saw, not one per call — counting one
    per call took 255 requests to DigitalOcean in a minute that allows 250
    (benchmarks/drills.py, 100 drills)."""
    from snapshot_policy.engine import drill as drill_engine

    seen: list[tuple[drill_engine.AccountDrills, int]] = []
    spent: dict[int, int] = {}

    class Counting(drill_engine.RequestBudget):
        def spend(self, requests: int = 1) -> None:
            spent[id(self)] = spent.get(id(self), 0) + requests
            super().spend(requests)

    original = drill_engine.AccountDrills.__init__

    def watched(self, drills, provider, plans):
        seen.append((self, provider.requests))
        original(self, drills, provider, plans)

    monkeypatch.setattr(drill_engine, "RequestBudget", Counting)
    monkeypatch.setattr(drill_engine.AccountDrills, "__init__", watched)
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock) == 0, capsys.readouterr()
    assert {run.account for run, _ in seen} == {"do", "hz"}
    for run, before in seen:
        made = run.provider.requests - before
        assert made >= 6  # a create, polls, a re-read and a delete, a mark
        assert spent[id(run.budget)] == made, run.account
