"""apply against the sandbox, through the CLI and the real SDKs: docs/promises.md §5's invariants,
one by one."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from datetime import timedelta

import pytest

from snapshot_policy.cli import main
from snapshot_policy.output.jsondoc import iso_utc
from snapshot_policy.output.logs import unstamped
from tests.e2e.cloud import BOT_TOKEN, DO_TOKEN, HZ_TOKEN, iso, legacy_name, made, unwrapped
from tests.e2e.policies import DB, DEBUG_LOG, policy_yaml

WEB = {"name": "web", "account": "do", "names": ["web-1"], "retention": {"keep_last": 3}}
POLICY = policy_yaml(WEB, DB, settings=DEBUG_LOG)


@pytest.fixture
def policy(tmp_path, sandbox, tokens):
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(POLICY)
    return path


def names(sandbox, server_id):
    """The names of a server's snapshots in the sandbox, newest first; one made by the run
    (dated by the sandbox's clock, which the run shares) reads NEW."""
    snapshots = [s for s in sandbox.dump_state()["snapshots"] if s.get("server_id") == server_id]
    now = iso_utc(sandbox.state.clock())
    return [
        ("NEW" if s["created"] == now else s["name"])
        for s in sorted(snapshots, key=lambda s: (s["created"], s["id"]), reverse=True)
    ]


def writes(sandbox):
    return [r for r in sandbox.requests() if r["method"] != "GET"]


def apply(clock, *args):
    return main(["apply", *args], clock=clock)


def test_apply_creates_then_leaves_exactly_the_retained_set(policy, sandbox, capsys, clock):
    before_web = names(sandbox, 3164444)
    assert apply(clock, "--policy", str(policy)) == 0
    out, err = capsys.readouterr()
    web, db = names(sandbox, 3164444), names(sandbox, 4711)
    # keep_last 3 counts the new snapshot: two old ones stay; the manual one is not ours.
    assert web[:3] == [
        "NEW",
        legacy_name("web-1", clock.now, 1),
        legacy_name("web-1", clock.now, 2),
    ]
    assert set(web) == set(web[:3]) | {"web-1-before-upgrade"}
    assert db == ["NEW", legacy_name("db-1", clock.now, 1), "db-1-manual"]  # protected stays
    assert legacy_name("web-10", clock.now, 1) in names(
        sandbox, 3164445
    )  # a look-alike server is untouched
    assert len(before_web) == 6
    created = f"web-1-{clock.now:%Y%m%d%H%M%S}"  # named after the run's clock, not the machine's
    assert (
        f"web: web-1 (digitalocean server 3164444): ok: created {created}, "
        "deleted 3, 3 managed snapshot(s) remain"
    ) in unwrapped(out)
    assert (
        unwrapped(unstamped(err))
        .strip()
        .splitlines()[-1]
        .startswith(
            "snapshot-policy apply: 2 target(s), 2 server(s), 2 created, 7 deleted, 0 failed in "
        )
    )


def test_apply_then_plan_shows_nothing_to_do_and_a_second_apply_creates_nothing(
    policy, sandbox, capsys, clock
):
    assert apply(clock, "--policy", str(policy)) == 0
    assert main(["plan", "--policy", str(policy), "--detailed-exitcode"], clock=clock) == 0
    sandbox.clear_requests()
    assert apply(clock, "--policy", str(policy)) == 0
    assert writes(sandbox) == []


def test_a_failed_snapshot_deletes_nothing_for_its_target(policy, sandbox, capsys, clock):
    sandbox.inject("fail_action", service="hetzner")
    before = names(sandbox, 4711)
    assert apply(clock, "--policy", str(policy)) == 2  # web succeeded, db failed
    assert names(sandbox, 4711) == before
    assert "db: db-1 (hetzner server 4711): FAILED" in capsys.readouterr().out


def test_a_failed_listing_deletes_nothing(policy, sandbox, capsys, clock):
    # A refusal, not a hiccup: retried errors are the providers' tests' business, and slow.
    sandbox.inject(
        "error", service="digitalocean", method="GET", path="/v2/snapshots", status=403, count=None
    )
    before = names(sandbox, 3164444)
    assert apply(clock, "--policy", str(policy)) == 2
    assert names(sandbox, 3164444) == before
    assert [r for r in writes(sandbox) if r["provider"] == "digitalocean"] == []
    assert "web: FAILED: cannot read account do" in capsys.readouterr().out


def test_all_targets_failing_exits_1(policy, sandbox, capsys, clock):
    sandbox.inject("error", method="GET", status=403, count=None)
    assert apply(clock, "--policy", str(policy)) == 1


def test_max_deletions_refuses_instead_of_truncating(policy, sandbox, capsys, clock):
    capped = {**WEB, "retention": {"keep_last": 1}, "safety": {"max_deletions": 2}}
    policy.write_text(policy_yaml(capped, DB, settings=DEBUG_LOG))
    before = set(names(sandbox, 3164444))
    assert apply(clock, "--policy", str(policy)) == 2
    after = set(names(sandbox, 3164444))
    assert after == before | {"NEW"}  # created, nothing deleted
    assert "refused: 5 deletions exceed max_deletions 2" in unwrapped(capsys.readouterr().out)


def test_dry_run_calls_no_write_endpoint(policy, sandbox, capsys, clock):
    sandbox.clear_requests()
    assert apply(clock, "--policy", str(policy), "--dry-run") == 0
    assert writes(sandbox) == []
    assert "+ create web-1-" in capsys.readouterr().out


def test_dry_run_with_a_saved_plan_shows_what_that_plan_would_do(
    policy, sandbox, tmp_path, capsys, clock
):
    """apply --plan F --dry-run shows F's effect (what it and a fresh plan agree on), or its
    refusal."""
    saved = tmp_path / "plan.json"
    assert main(["plan", "--policy", str(policy), "--out", str(saved)], clock=clock) == 0
    document = json.loads(saved.read_text())
    for target in document["targets"]:
        if (
            target["target"] == "web"
        ):  # the reviewer struck web's create and deletions from the file
            target["create"], target["delete"] = None, []
    saved.write_text(json.dumps(document))
    capsys.readouterr()
    sandbox.clear_requests()
    assert apply(clock, "--policy", str(policy), "--plan", str(saved), "--dry-run") == 0
    out = capsys.readouterr().out
    assert unwrapped(out).startswith(
        f"Dry run: apply --plan {saved} would do the following; nothing was changed."
    )
    assert "+ create web-1-" not in out and "+ create " in out  # db's create stands, web's is gone
    assert writes(sandbox) == []
    document["fingerprint"] = "sha256:" + "0" * 64
    saved.write_text(json.dumps(document))
    assert apply(clock, "--policy", str(policy), "--plan", str(saved), "--dry-run") == 1
    assert "the snapshots changed since" in capsys.readouterr().err


def test_saved_plan_is_applied_exactly_or_refused_if_the_snapshots_changed(
    policy, sandbox, tmp_path, capsys, clock
):
    saved = tmp_path / "plan.json"
    assert main(["plan", "--policy", str(policy), "--out", str(saved)], clock=clock) == 0
    state = sandbox.dump_state()
    state["snapshots"] = [
        s for s in state["snapshots"] if s["name"] != legacy_name("web-1", clock.now, 5)
    ]
    sandbox.load_state(state)
    sandbox.clear_requests()
    assert apply(clock, "--policy", str(policy), "--plan", str(saved)) == 1
    assert "the snapshots changed since" in capsys.readouterr().err
    assert writes(sandbox) == []

    assert main(["plan", "--policy", str(policy), "--out", str(saved)], clock=clock) == 0
    planned = json.loads(saved.read_text())
    assert apply(clock, "--policy", str(policy), "--plan", str(saved)) == 0
    for entry in planned["targets"]:
        deleted = {d["name"] for d in entry["delete"]}
        server = int(entry["server_id"])
        assert deleted.isdisjoint(names(sandbox, server))
        assert "NEW" in names(sandbox, server)


def test_secrets_never_reach_output_or_the_log(policy, sandbox, tmp_path, capsys, clock):
    sandbox.inject("error", service="hetzner", method="GET", status=500, count=1)
    assert apply(clock, "--policy", str(policy), "-v") == 0
    out, err = capsys.readouterr()
    log = (tmp_path / "run" / "snapshot-policy.log").read_text()
    assert re.search(r"created web-1-\d{14}", log) and "deleted" in log
    for secret in (DO_TOKEN, HZ_TOKEN, BOT_TOKEN):
        assert secret not in out + err + log


def test_a_second_run_exits_3_naming_the_lock_file_and_its_holder(
    policy, sandbox, tmp_path, capsys, clock
):
    lock = tmp_path / "run" / "snapshot-policy.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from snapshot_policy.state.runlock import run_lock\nimport time\n"
            f"with run_lock({str(lock)!r}):\n    print('held', flush=True)\n    time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        assert apply(clock, "--policy", str(policy)) == 3
        err = capsys.readouterr().err
        assert str(lock) in err and str(holder.pid) in err
    finally:
        holder.kill()
        holder.wait()
    assert apply(clock, "--policy", str(policy)) == 0  # the stale lock file does not block


def test_legacy_layout_applies_end_to_end(legacy_layout, sandbox, monkeypatch, capsys, clock):
    server_file = legacy_layout / "configs" / "hetzner_cloud_server1.json"
    server_file.write_text(
        server_file.read_text().replace(
            "https://hooks.example.com/snap", sandbox.webhook_url("legacy")
        )
    )
    monkeypatch.chdir(legacy_layout)
    assert main(["apply"], clock=clock) == 0
    assert names(sandbox, 3164444)[:3] == [
        "NEW",
        legacy_name("web-1", clock.now, 1),
        legacy_name("web-1", clock.now, 2),
    ]
    assert len([n for n in names(sandbox, 3164444) if n != "web-1-before-upgrade"]) == 3
    assert names(sandbox, 4711) == ["NEW", legacy_name("db-1", clock.now, 1), "db-1-manual"]
    assert (legacy_layout / "logs" / "snapshots.log").is_file()


def add_snapshots(sandbox, *snapshots):
    state = sandbox.dump_state()
    state["snapshots"] += list(snapshots)
    sandbox.load_state(state)


OURS_ON_DB = {"managed-by": "snapshot-policy", "snapshot-policy/server-id": "4711"}


def test_protected_snapshots_are_never_deleted_but_reported(policy, sandbox, capsys, clock):
    old = legacy_name("db-1", clock.now, 330)
    add_snapshots(
        sandbox,
        {
            "account": "hz",
            "server_id": 4711,
            "name": old,
            "created": iso(made(clock.now, 330)),
            "labels": OURS_ON_DB,
            "protected": True,
        },
    )
    assert apply(clock, "--policy", str(policy)) == 0
    assert old in names(sandbox, 4711)
    assert main(["plan", "--policy", str(policy)], clock=clock) == 0
    assert f"! skip {old}" in capsys.readouterr().out


def test_a_snapshot_being_created_is_neither_deleted_nor_doubled(policy, sandbox, capsys, clock):
    busy = legacy_name("db-1", clock.now, 1 / 48)
    add_snapshots(
        sandbox,
        {
            "account": "hz",
            "server_id": 4711,
            "name": busy,
            "created": iso(made(clock.now, 1 / 48)),
            "labels": OURS_ON_DB,
            "status": "creating",
        },
    )
    assert apply(clock, "--policy", str(policy), "--target", "db") == 0
    after = names(sandbox, 4711)
    assert busy in after and "NEW" not in after
    assert "no new snapshot" in capsys.readouterr().out


def test_a_snapshot_slower_than_the_timeout_fails_then_is_adopted_not_doubled(
    policy, sandbox, capsys, clock
):
    policy.write_text(policy_yaml(WEB, DB, settings={"snapshot_creation_timeout": 1, **DEBUG_LOG}))
    sandbox.state.action_seconds = 2.5
    assert apply(clock, "--policy", str(policy)) == 1
    assert "timed out after 1s" in capsys.readouterr().out
    assert "NEW" not in names(
        sandbox, 3164444
    )  # DigitalOcean lists a snapshot only once it is done
    assert "NEW" in names(sandbox, 4711)  # Hetzner lists it while it is being created
    time.sleep(2.6)
    sandbox.state.action_seconds = 0.05
    assert apply(clock, "--policy", str(policy)) == 0
    for server in (3164444, 4711):
        assert names(sandbox, server).count("NEW") == 1


def test_snapshot_starts_on_one_account_are_spaced_while_waits_overlap(
    tmp_path, sandbox, monkeypatch, clock
):
    monkeypatch.setenv("TEST_HZ_TOKEN", HZ_TOKEN)
    state = sandbox.dump_state()
    state["servers"] += [{"account": "hz", "id": 5000 + n, "name": f"app-{n}"} for n in range(3)]
    sandbox.load_state(state)
    sandbox.state.action_seconds = 1.0
    path = tmp_path / "p.yaml"
    path.write_text(
        "version: 1\naccounts:\n  hz: {provider: hetzner, token: env:TEST_HZ_TOKEN}\n"
        "targets:\n"
        "  - {name: apps, account: hz, ids: [5000, 5001, 5002], retention: {keep_last: 1}}\n"
        "settings: {lock_file: lock, delay_between_servers: 0.4}\n"
    )
    started = time.monotonic()
    assert main(["apply", "--policy", str(path)], clock=clock) == 0
    elapsed = time.monotonic() - started
    starts = sorted(r["time"] for r in sandbox.requests() if r["method"] == "POST")
    assert len(starts) == 3
    assert all(b - a >= 0.35 for a, b in zip(starts, starts[1:], strict=False))
    assert elapsed < 3 * 1.0  # three 1 s snapshots, not one after the other


def test_a_snapshot_dated_in_the_future_is_kept_and_fails_its_target(
    policy, sandbox, capsys, clock
):
    ahead = f"db-1-{clock.now + timedelta(days=30):%Y%m%d%H%M%S}"
    add_snapshots(
        sandbox,
        {
            "account": "hz",
            "server_id": 4711,
            "name": ahead,
            "created": iso(clock.now + timedelta(days=30)),
            "labels": OURS_ON_DB,
        },
    )
    assert apply(clock, "--policy", str(policy)) == 2  # web is fine; db reports the skew
    # keep_last 2 counts the new snapshot and the newest real one, not the one from the future.
    assert names(sandbox, 4711) == [ahead, "NEW", legacy_name("db-1", clock.now, 1), "db-1-manual"]
    out = capsys.readouterr().out
    assert (
        "db: db-1 (hetzner server 4711): FAILED: created db-1-" in out
        and f"clock skew: snapshot {ahead}" in out
    )


def test_a_snapshot_stuck_creating_fails_its_target_every_run(policy, sandbox, capsys, clock):
    stuck = legacy_name("db-1", clock.now, 13)
    add_snapshots(
        sandbox,
        {
            "account": "hz",
            "server_id": 4711,
            "name": stuck,
            "created": iso(made(clock.now, 13)),
            "labels": OURS_ON_DB,
            "status": "creating",
        },
    )
    for _ in range(2):
        assert apply(clock, "--policy", str(policy), "--target", "db") == 1
        out = unwrapped(capsys.readouterr().out)
        assert "db: db-1 (hetzner server 4711): FAILED: no new snapshot" in out
        assert f"snapshot {stuck} (" in out and "has been creating for 13 d 0 h" in out
    assert "NEW" not in names(sandbox, 4711)


def edited_plan(policy, clock, saved, edit):
    """`plan --out`, then `edit` the saved document as a person (or an attacker) might."""
    assert main(["plan", "--policy", str(policy), "--out", str(saved)], clock=clock) == 0
    document = json.loads(saved.read_text())
    edit(document)
    saved.write_text(json.dumps(document))


def test_a_hand_edited_saved_plan_is_refused_whole_and_changes_nothing(
    policy, sandbox, tmp_path, capsys, clock
):
    def delete_the_manual_and_the_newest(document):
        web = next(t for t in document["targets"] if t["target"] == "web")
        web["delete"] += [{"id": s["id"], "name": s["name"]} for s in web["skip"] + web["keep"]]
        web["refused"] = None

    saved = tmp_path / "plan.json"
    edited_plan(policy, clock, saved, delete_the_manual_and_the_newest)
    capsys.readouterr()
    sandbox.clear_requests()
    assert apply(clock, "--policy", str(policy), "--plan", str(saved)) == 1
    err = capsys.readouterr().err
    assert (
        "asks for what a fresh plan would not do, so the whole plan is refused; nothing was changed"
        in err
    )
    assert (
        "the saved plan deletes web-1-before-upgrade" in err
        and "a fresh plan would skip it: unmanaged" in err
    )
    assert f"the saved plan deletes {legacy_name('web-1', clock.now, 1)}" in err
    assert writes(sandbox) == []


def test_a_saved_plan_from_another_configuration_or_too_old_is_refused(
    policy, sandbox, tmp_path, capsys, clock
):
    saved = tmp_path / "plan.json"
    assert main(["plan", "--policy", str(policy), "--out", str(saved)], clock=clock) == 0
    changed = {**WEB, "retention": {"keep_last": 30}, "safety": {"max_deletions": 1}}
    policy.write_text(policy_yaml(changed, DB, settings=DEBUG_LOG))
    capsys.readouterr()
    sandbox.clear_requests()
    assert apply(clock, "--policy", str(policy), "--plan", str(saved)) == 1
    assert "was made from another configuration" in capsys.readouterr().err
    policy.write_text(POLICY)
    clock.advance(hours=25)
    assert apply(clock, "--policy", str(policy), "--plan", str(saved)) == 1
    assert "25.0 h ago, past the limit of 24.0 h" in capsys.readouterr().err
    assert writes(sandbox) == []


def test_a_saved_plan_replayed_after_a_hook_was_added_is_refused_and_runs_no_hook(
    policy, sandbox, tmp_path, capsys, clock
):
    """Hooks decide what a run does: they are in the configuration's fingerprint, and the plan
    text shows them, so a reviewed plan never runs a command its reviewer did not see (issue 19)."""
    saved, ran = tmp_path / "plan.json", tmp_path / "hook-ran"
    assert main(["plan", "--policy", str(policy), "--out", str(saved)], clock=clock) == 0
    hooked = {**DB, "hooks": {"before": ["touch", str(ran)]}}
    policy.write_text(policy_yaml(WEB, hooked, settings=DEBUG_LOG))
    capsys.readouterr()
    assert main(["plan", "--policy", str(policy)], clock=clock) == 0
    assert (
        f"  hooks: before touch\n      {ran}\n      (timeout 300s)" in capsys.readouterr().out
    )  # wrapped at 80 columns
    sandbox.clear_requests()
    assert apply(clock, "--policy", str(policy), "--plan", str(saved)) == 1
    assert "was made from another configuration" in capsys.readouterr().err
    assert writes(sandbox) == [] and not ran.exists()


def test_max_plan_age_accepts_an_older_saved_plan_when_asked(
    policy, sandbox, tmp_path, capsys, clock
):
    saved = tmp_path / "plan.json"
    assert main(["plan", "--policy", str(policy), "--out", str(saved)], clock=clock) == 0
    clock.advance(hours=30)
    assert apply(clock, "--policy", str(policy), "--plan", str(saved), "--max-plan-age", "2d") == 0
    assert "2 created, 7 deleted" in capsys.readouterr().err
    assert apply(clock, "--policy", str(policy), "--plan", str(saved), "--max-plan-age", "1m") == 1
    assert "give hours or days" in capsys.readouterr().err
