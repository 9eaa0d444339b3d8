"""Copies in other regions (DigitalOcean image transfers) through the CLI against the sandbox:
docs/promises.md §5.15 — older snapshots are pruned only once the newest has every copy; a
failed or timed-out transfer fails the target and deletes nothing; the next run starts what
is missing."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from subprocess import PIPE

import pytest

from snapshot_policy.cli import main
from tests.e2e.cloud import legacy_name, unwrapped
from tests.e2e.policies import DB, DEBUG_LOG, policy_yaml

WEB = {
    "name": "web",
    "account": "do",
    "ids": [3164444],
    "retention": {"keep_last": 3},
    "copies": [{"region": "ams3"}, {"region": "fra1"}],
}
DROPLET = 3164444


def write(tmp_path, *targets, settings=None) -> str:
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(policy_yaml(*targets, settings={**DEBUG_LOG, **(settings or {})}))
    return str(path)


@pytest.fixture
def policy(tmp_path, sandbox, tokens):
    """web copies to two regions; db (Hetzner) beside it succeeds, so a failed web exits 2."""
    return write(tmp_path, WEB, DB)


@pytest.fixture
def later(sandbox):
    """Move the sandbox's action clock on: transfers running finish at once."""
    offset = [0.0]
    real = sandbox.state.monotonic
    sandbox.state.monotonic = lambda: real() + offset[0]

    def move(seconds: float) -> None:
        offset[0] += seconds

    return move


def web_snapshots(sandbox) -> list[dict]:
    """web-1's snapshots in the sandbox, newest first."""
    return sorted(
        (s for s in sandbox.dump_state()["snapshots"] if s.get("server_id") == DROPLET),
        key=lambda s: (s["created"], s["id"]),
        reverse=True,
    )


def flat(text: str) -> str:
    """A plan's text with its wrapped lines joined: for assertions on whole sentences."""
    return re.sub(r"\s+", " ", text)


def writes(sandbox) -> list[tuple[str, str]]:
    return [
        (r["method"], r["path"]) for r in sandbox.requests("digitalocean") if r["method"] != "GET"
    ]


def test_plan_shows_each_snapshots_regions_and_the_newests_missing_copies(
    policy, sandbox, capsys, clock
):
    assert main(["plan", "--policy", policy], clock=clock) == 0
    out = flat(capsys.readouterr().out)
    assert "copies: ams3, fra1; older snapshots go only once the newest has each" in out
    newest = legacy_name("web-1", clock.now, 1)
    assert re.search(
        rf"{newest} \(id \d+, [^)]*\) kept by: last in nyc3; missing copies: ams3, fra1 ", out
    )
    assert "copied to ams3, fra1 once made, before any deletion" in out
    assert out.count(" in nyc3") == 5  # each managed snapshot's region
    assert main(["plan", "--policy", policy, "--output", "json"], clock=clock) == 0
    (target,) = [t for t in json.loads(capsys.readouterr().out)["targets"] if t["target"] == "web"]
    assert target["copies"]["regions"] == ["ams3", "fra1"]
    assert target["copies"]["newest"]["regions"] == ["nyc3"]
    assert target["copies"]["newest"]["missing"] == ["ams3", "fra1"]
    assert target["copies"]["newest"]["transferring"] == []
    assert len(target["copies"]["snapshot_regions"]) == 5
    assert not any(m == "POST" for m, _ in writes(sandbox))  # a plan changes nothing


def test_apply_creates_copies_then_prunes(policy, sandbox, capsys, clock):
    assert main(["apply", "--policy", policy], clock=clock) == 0
    out = capsys.readouterr().out
    snapshots = web_snapshots(sandbox)
    new = snapshots[0]
    assert new["name"] == f"web-1-{clock.now:%Y%m%d%H%M%S}"
    assert sorted(new["copies"]) == ["ams3", "fra1"]
    managed = [s for s in snapshots if s["name"] != "web-1-before-upgrade"]
    assert len(managed) == 3  # keep_last 3: two old ones stay, three went
    assert "copied to ams3, fra1, deleted 3" in unwrapped(out)
    sent = writes(sandbox)
    transfers = [i for i, (m, p) in enumerate(sent) if p.endswith(f"/{new['id']}/actions")]
    deletes = [i for i, (m, p) in enumerate(sent) if m == "DELETE"]
    assert len(transfers) == 2 and len(deletes) == 3
    assert max(transfers) < min(deletes)
    bodies = [
        json.loads(r["body"]) if isinstance(r.get("body"), str) else r.get("body")
        for r in sandbox.requests("digitalocean")
        if r["method"] == "POST" and "/v2/images/" in r["path"]
    ]
    if all(bodies):
        assert sorted(b["region"] for b in bodies) == ["ams3", "fra1"]
    # The next plan: everything has its copies; nothing is held.
    clock.advance(hours=1)
    assert main(["plan", "--policy", policy], clock=clock) == 0
    out = flat(capsys.readouterr().out)
    assert re.search(r"in nyc3, (ams3, fra1|fra1, ams3) ", out)
    assert "missing copies" not in out and "held:" not in out
    main(["status", "--policy", policy], clock=clock)  # web-10 is uncovered: exit 2 anyway
    out = flat(capsys.readouterr().out)
    assert re.search(r"copies: in nyc3, (ams3, fra1|fra1, ams3) ", out)
    assert "no transfer is running" not in out


def test_a_failed_transfer_fails_the_target_and_deletes_nothing_then_the_next_run_copies(
    policy, sandbox, capsys, clock, tmp_path
):
    sandbox.inject("transfer_fail", service="digitalocean", name="ams3")
    before = {s["id"] for s in web_snapshots(sandbox)}
    assert main(["apply", "--policy", policy], clock=clock) == 2
    out = unwrapped(capsys.readouterr().out)
    assert "FAILED" in out and "copy to ams3 failed, nothing deleted" in out
    assert before <= {s["id"] for s in web_snapshots(sandbox)}  # nothing deleted
    assert not any(m == "DELETE" for m, _ in writes(sandbox))
    new = web_snapshots(sandbox)[0]
    assert new["copies"] == ["fra1"]

    # status says what the newest lacks, and that nothing is copying it.
    clock.advance(minutes=5)
    assert main(["status", "--policy", policy], clock=clock) == 2
    out = flat(capsys.readouterr().out)
    assert "copies: in nyc3, fra1; missing copies: ams3" in out
    assert "the newest snapshot has no copy in ams3 and no transfer is running" in out
    assert main(["status", "--policy", policy, "--output", "json"], clock=clock) == 2
    (web,) = [t for t in json.loads(capsys.readouterr().out)["targets"] if t["target"] == "web"]
    assert web["copies"] == {
        "regions": ["ams3", "fra1"],
        "newest_regions": ["nyc3", "fra1"],
        "missing": ["ams3"],
        "transferring": [],
    }

    # The next run, nothing due: the plan holds the deletions and says which copy it starts.
    clock.advance(hours=1)
    assert main(["plan", "--policy", policy], clock=clock) == 0
    out = flat(capsys.readouterr().out)
    assert f"~ copy {new['name']} (id {new['id']}) to ams3" in out
    assert "held: the newest snapshot has no copy in ams3 yet" in out
    report = tmp_path / "report.json"
    assert main(["apply", "--policy", policy, "--report", str(report)], clock=clock) == 0
    assert "no new snapshot, copied to ams3, deleted 0" in unwrapped(capsys.readouterr().out)
    assert web_snapshots(sandbox)[0]["copies"] == ["fra1", "ams3"]
    (done,) = [o for o in json.loads(report.read_text())["targets"] if o["target"] == "web"]
    assert done["copied_to"] == ["ams3"] and done["ok"]
    assert not any(m == "DELETE" for m, _ in writes(sandbox))  # held in this run's plan
    # The run after prunes: the newest has every copy now.
    clock.advance(hours=1)
    assert main(["apply", "--policy", policy], clock=clock) == 0
    assert sum(1 for m, _ in writes(sandbox) if m == "DELETE") == 3


def test_a_timed_out_transfer_deletes_nothing_and_the_next_run_waits_for_it(
    tmp_path, sandbox, tokens, capsys, clock, later
):
    policy = write(tmp_path, WEB, DB, settings={"snapshot_creation_timeout": 1})
    sandbox.state.transfer_seconds = 3600
    assert main(["apply", "--policy", policy], clock=clock) == 2
    out = unwrapped(capsys.readouterr().out)
    assert "copy to ams3 failed, nothing deleted" in out and "timed out" in out
    assert not any(m == "DELETE" for m, _ in writes(sandbox))
    new = web_snapshots(sandbox)[0]
    assert "copies" not in new

    # The next run sees both transfers still running: it starts none and deletes nothing.
    clock.advance(hours=1)
    assert main(["plan", "--policy", policy], clock=clock) == 0
    out = flat(capsys.readouterr().out)
    assert "missing copies: ams3 (transfer running), fra1 (transfer running)" in out
    main(["status", "--policy", policy], clock=clock)
    shown = flat(capsys.readouterr().out)
    assert "missing copies: ams3 (transfer running)" in shown
    assert "no transfer is running" not in shown  # running: nothing to do about it
    assert "(a transfer to ams3, fra1 is running)" in out
    assert "~ copy" not in out
    posts = len([1 for m, p in writes(sandbox) if m == "POST" and "/images/" in p])
    assert main(["apply", "--policy", policy], clock=clock) == 0
    capsys.readouterr()
    assert len([1 for m, p in writes(sandbox) if m == "POST" and "/images/" in p]) == posts
    assert not any(m == "DELETE" for m, _ in writes(sandbox))

    # Once they are done, the next run prunes.
    later(3600)
    clock.advance(hours=1)
    assert main(["apply", "--policy", policy], clock=clock) == 0
    assert sorted(web_snapshots(sandbox)[0]["copies"]) == ["ams3", "fra1"]
    assert sum(1 for m, _ in writes(sandbox) if m == "DELETE") == 3


def test_a_hetzner_target_with_copies_is_refused_by_validate(tmp_path, tokens, capsys, clock):
    db = {**DB, "copies": [{"region": "nbg1"}]}
    policy = write(tmp_path, db)
    assert main(["validate", "--policy", policy], clock=clock) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "snapshot-policy.yaml" in text and "targets[0].copies" in text
    assert "Hetzner has no API to copy a snapshot to another location" in text
    assert "remove `copies`" in text
    assert "Traceback" not in text


def test_a_region_listed_twice_is_refused(tmp_path, tokens, capsys, clock):
    web = {**WEB, "copies": [{"region": "ams3"}, {"region": "ams3"}]}
    assert main(["validate", "--policy", write(tmp_path, web)], clock=clock) == 1
    out = capsys.readouterr()
    assert "targets[0].copies[1].region" in out.out + out.err
    assert "ams3 is listed twice; list each region once" in out.out + out.err


def test_transfers_of_many_droplets_are_polled_in_batched_rounds(
    tmp_path, sandbox, tokens, capsys, clock
):
    ids = list(range(5550001, 5550013))
    for droplet in ids:
        sandbox.state.add_server("do", name=f"app-{droplet}", id=droplet)
    sandbox.state.transfer_seconds = 0.6
    app = {
        "name": "app",
        "account": "do",
        "ids": ids,
        "retention": {"keep_last": 2},
        "copies": [{"region": "ams3"}, {"region": "lon1"}],
    }
    policy = write(tmp_path, app)
    started = time.monotonic()
    assert main(["apply", "--policy", policy], clock=clock) == 0
    seconds = time.monotonic() - started
    capsys.readouterr()
    made = [s for s in sandbox.dump_state()["snapshots"] if s.get("server_id") in ids]
    assert len(made) == 12 and all(sorted(s["copies"]) == ["ams3", "lon1"] for s in made)
    reads = [r["path"] for r in sandbox.requests("digitalocean") if r["method"] == "GET"]
    # No image is polled on its own: one account listing a round serves every transfer.
    assert not any(re.fullmatch(r"/v2/images/\d+/actions(/\d+)?", p) for p in reads)
    assert not any(re.fullmatch(r"/v2/actions/\d+", p) for p in reads)
    rounds = sum(1 for p in reads if p == "/v2/actions")
    # 12 snapshots and 24 transfers: the rounds follow the time waited (spaced by the oldest's
    # age, FIRST_POLL apart at first), never the number of servers or images.
    assert rounds <= 4 + 20 * seconds, (rounds, seconds)  # two kinds of poll, 0.1 s apart


def transfer_posts(sandbox) -> list[dict]:
    return [
        r
        for r in sandbox.requests("digitalocean")
        if r["method"] == "POST" and re.fullmatch(r"/v2/images/\d+/actions", r["path"])
    ]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_run_stopped_while_copying_deletes_nothing_and_the_next_run_starts_no_second_copy(
    wall_clock_sandbox, tokens, tmp_path, signum
):
    sandbox = wall_clock_sandbox
    sandbox.state.transfer_seconds = 60
    policy = tmp_path / "policy.yaml"
    policy.write_text(policy_yaml(WEB, settings={"lock_file": "run/lock"}))
    argv = [sys.executable, "-m", "snapshot_policy", "apply", "--policy", str(policy)]
    run = subprocess.Popen(argv, env=dict(os.environ), stdout=PIPE, stderr=PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while sum(r["status"] == 201 for r in transfer_posts(sandbox)) < 2:
            assert time.monotonic() < deadline, "the run never copied"
            time.sleep(0.02)
        run.send_signal(signum)
        out, err = run.communicate(timeout=30)
    finally:
        run.kill()
    assert run.returncode == {signal.SIGTERM: 143, signal.SIGKILL: -9}[signum], err
    if signum == signal.SIGTERM:
        assert "stopped the run while" in unwrapped(out) and "being copied to ams3, fra1" in (
            unwrapped(out)
        )
    assert not [r for r in sandbox.requests("digitalocean") if r["method"] == "DELETE"]

    # The next run: the transfers still run; it starts none again and deletes nothing.
    again = subprocess.run(argv, env=dict(os.environ), capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(transfer_posts(sandbox)) == 2
    assert not [r for r in sandbox.requests("digitalocean") if r["method"] == "DELETE"]
    plan = subprocess.run(
        [*argv[:3], "plan", *argv[4:]], env=dict(os.environ), capture_output=True, text=True
    )
    assert "held: the newest snapshot has no copy in ams3, fra1 yet" in flat(plan.stdout)


def test_copies_are_polled_while_an_after_hook_runs_even_if_timed_waits_never_end(
    tmp_path, sandbox, tokens, capsys, clock, monkeypatch
):
    """Review (issue 23): under libfaketime (CI's moved-clock run) a thread's timed wait never
    runs out. The account loop waited for its replies and hooks with a timeout meant to wake
    it for the next copy poll, so while the after hook ran (it starts as the snapshot is
    made, with the copies) no transfer was looked at until the hook ended. A timed wait with
    a positive timeout is made to never run out here, as it does there."""
    from concurrent import futures

    from snapshot_policy.edges.providers.digitalocean import DigitalOcean

    def never_runs_out(waited, timeout=None, return_when=futures.ALL_COMPLETED):
        return futures.wait(waited, timeout=0 if timeout == 0 else None, return_when=return_when)

    monkeypatch.setattr("snapshot_policy.engine.execute.wait", never_runs_out)
    done = tmp_path / "after-hook-done"
    seen: list[bool] = []
    polled = DigitalOcean.transfers

    def watched(self, snapshot_ids):
        if self._transfers:  # this run's transfers, not the plan's look
            seen.append(done.exists())
        return polled(self, snapshot_ids)

    monkeypatch.setattr(DigitalOcean, "transfers", watched)
    hooked = {**WEB, "hooks": {"after": f"sleep 3; touch {done}", "shell": True}}
    assert main(["apply", "--policy", write(tmp_path, hooked)], clock=clock) == 0
    assert sorted(web_snapshots(sandbox)[0]["copies"]) == ["ams3", "fra1"]
    assert seen and not seen[0], seen  # looked at while the hook still ran
