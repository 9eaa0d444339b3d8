"""DigitalOcean volumes (`volumes: true`, issue 23 item 6; docs/promises.md §5.18), through the
CLI and pydo against the sandbox: web-1's attached volume is snapshotted on the droplet's
schedule, kept by the droplet's rules, listed once per account, and pruned of our own
snapshots only; a lost create reply makes no second snapshot; Hetzner refuses the key."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from snapshot_policy.cli import main
from snapshot_policy.sandbox import Sandbox
from tests.e2e.cloud import cloud, iso, made, stamp, unwrapped
from tests.e2e.policies import DB, WEB, policy_yaml

VOLUME = "5a1c0d3e-7b2f-4c61-9e0a-3f8d2b6c4e11"
DETACHED = "6b2d1e4f-8c3a-4d72-8f1b-4a9e3c7d5f22"
OWNER = "ops"
OURS = ["snapshot-policy", f"snapshot-policy-owner-{OWNER}"]
THEIRS = ["snapshot-policy", "snapshot-policy-owner-someone-else"]


def volume_cloud(now) -> dict:
    """The usual cloud, plus volume pgdata attached to web-1 with four days of our snapshots,
    a manual one, another configuration's, and a detached volume with one of ours."""
    state = cloud(now)
    state["volumes"] = [
        {"account": "do", "id": VOLUME, "name": "pgdata", "droplet_ids": [3164444]},
        {"account": "do", "id": DETACHED, "name": "scratch", "droplet_ids": []},
    ]
    state["volume_snapshots"] = [
        *(
            {
                "account": "do",
                "id": f"00000000-0000-4000-8000-00000000000{d}",
                "volume_id": VOLUME,
                "name": f"web-1-pgdata-{stamp(made(now, d))}",
                "created": iso(made(now, d)),
                "tags": OURS,
            }
            for d in range(1, 5)
        ),
        {
            "account": "do",
            "id": "00000000-0000-4000-8000-0000000000aa",
            "volume_id": VOLUME,
            "name": "pgdata-before-upgrade",
            "created": iso(made(now, 30)),
        },
        {
            "account": "do",
            "id": "00000000-0000-4000-8000-0000000000bb",
            "volume_id": VOLUME,
            "name": f"web-1-pgdata-{stamp(made(now, 20))}",
            "created": iso(made(now, 20)),
            "tags": THEIRS,
        },
        {
            "account": "do",
            "id": "00000000-0000-4000-8000-0000000000cc",
            "volume_id": DETACHED,
            "name": f"web-9-scratch-{stamp(made(now, 40))}",
            "created": iso(made(now, 40)),
            "tags": OURS,
        },
    ]
    return state


@pytest.fixture
def volumes_sandbox(monkeypatch, clock):
    with Sandbox(volume_cloud(clock.now), action_seconds=0.05, clock=clock) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb


def write_policy(tmp_path, *targets) -> str:
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(
        policy_yaml(*targets, settings={"owner": OWNER, "lock_file": str(tmp_path / "lock")})
    )
    return str(path)


WEB_VOLUMES = {**WEB, "volumes": True}


def volume_snapshots(sandbox, volume: str = VOLUME) -> dict[str, dict]:
    return {
        s["id"]: s for s in sandbox.dump_state()["volume_snapshots"] if s["volume_id"] == volume
    }


def test_plan_shows_each_volume_under_its_droplet_with_what_retention_does(
    tmp_path, volumes_sandbox, tokens, capsys, clock
):
    policy = write_policy(tmp_path, WEB_VOLUMES)
    volumes_sandbox.clear_requests()
    assert main(["plan", "--policy", policy], clock=clock) == 0
    text = unwrapped(capsys.readouterr().out)
    reads = [(r["path"], r["query"].get("resource_type")) for r in volumes_sandbox.requests()]
    # one volume listing and one volume snapshot listing for the account (a page each here)
    assert reads.count(("/v2/volumes", None)) == 1
    assert reads.count(("/v2/snapshots", "volume")) == 1
    assert reads.count(("/v2/snapshots", "droplet")) == 1
    droplet = text.index("web: web-1 (digitalocean server 3164444, account do)")
    volume = text.index(f"web: web-1-pgdata (digitalocean volume {VOLUME} of droplet 3164444")
    assert droplet < volume
    block = text[volume:].split("\n\n")[0]
    assert f"create web-1-pgdata-{stamp(clock.now)}" in block
    assert block.count("- delete web-1-pgdata-") == 2  # keep_last 3, the new one counted
    assert block.count("= keep web-1-pgdata-") == 2
    assert "skip pgdata-before-upgrade" in block  # unmarked: never ours
    assert "another configuration's (owner someone-else" in block

    assert main(["plan", "--policy", policy, "--output", "json"], clock=clock) == 0
    document = json.loads(capsys.readouterr().out)
    (entry,) = [t for t in document["targets"] if t.get("volume_of") == "3164444"]
    assert entry["server_id"] == VOLUME and entry["server_name"] == "web-1-pgdata"
    assert len(entry["delete"]) == 2 and entry["create"]["name"].startswith("web-1-pgdata-")
    assert "volume_of" not in [t for t in document["targets"] if t["server_id"] == "3164444"][0]


def test_apply_snapshots_droplet_and_volume_and_prunes_only_our_own(
    tmp_path, volumes_sandbox, tokens, capsys, clock
):
    policy = write_policy(tmp_path, WEB_VOLUMES)
    before = volume_snapshots(volumes_sandbox)
    volumes_sandbox.clear_requests()
    assert main(["apply", "--policy", policy], clock=clock) == 0
    after = volume_snapshots(volumes_sandbox)
    made_now = [s for i, s in after.items() if i not in before]
    assert [s["name"] for s in made_now] == [f"web-1-pgdata-{stamp(clock.now)}"]
    assert set(made_now[0]["tags"]) == set(OURS)
    gone = set(before) - set(after)
    assert gone == {"00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000004"}
    # never deleted: the unmarked one, another owner's, the detached volume's
    assert {"00000000-0000-4000-8000-0000000000aa", "00000000-0000-4000-8000-0000000000bb"} <= set(
        after
    )
    assert "00000000-0000-4000-8000-0000000000cc" in volume_snapshots(volumes_sandbox, DETACHED)
    # the droplet's own snapshots are kept by the same rule: 3 left of its 5 + 1
    droplet = [s for s in volumes_sandbox.dump_state()["snapshots"] if s["server_id"] == 3164444]
    assert sum("snapshot-policy" in s.get("tags", []) for s in droplet) == 1  # the new one

    log = volumes_sandbox.requests("digitalocean")
    listings = [r for r in log if r["method"] == "GET" and r["path"] == "/v2/snapshots"]
    # one volume snapshot listing per account (the droplet's are also read to find its new one)
    assert [r["query"].get("resource_type") for r in listings].count("volume") == 1
    assert [r["path"] for r in log if r["path"] == "/v2/volumes"] == ["/v2/volumes"]
    creates = [r for r in log if r["method"] == "POST" and r["path"].startswith("/v2/volumes/")]
    assert [r["path"] for r in creates] == [f"/v2/volumes/{VOLUME}/snapshots"]
    deletes = [r["path"] for r in log if r["method"] == "DELETE"]
    assert "/v2/snapshots/00000000-0000-4000-8000-000000000004" in deletes
    out = unwrapped(capsys.readouterr().out)
    assert f"web: web-1-pgdata (digitalocean volume {VOLUME} of droplet 3164444): ok" in out

    # a second run within the day makes nothing more (§5.6)
    clock.advance(hours=1)
    assert main(["apply", "--policy", policy], clock=clock) == 0
    assert set(volume_snapshots(volumes_sandbox)) == set(after)

    # status shows the volume under its droplet, on time
    capsys.readouterr()
    main(["status", "--policy", policy], clock=clock)
    status = unwrapped(capsys.readouterr().out)
    head = f"web: web-1-pgdata (digitalocean volume {VOLUME} of droplet 3164444, account do): ok"
    assert status.index("web: web-1 (digitalocean server 3164444") < status.index(head)
    assert "newest web-1-pgdata-" in status and "snapshots: 3 managed" in status


def test_a_lost_reply_to_a_volume_snapshot_makes_no_second_one(
    tmp_path, volumes_sandbox, tokens, clock
):
    policy = write_policy(tmp_path, WEB_VOLUMES)
    volumes_sandbox.inject(
        "lose_reply",
        service="digitalocean",
        method="POST",
        path=r"^/v2/volumes/[^/]+/snapshots$",
        count=1,
    )
    assert main(["apply", "--policy", policy], clock=clock) == 0
    name = f"web-1-pgdata-{stamp(clock.now)}"
    named = [s for s in volume_snapshots(volumes_sandbox).values() if s["name"] == name]
    assert len(named) == 1 and set(named[0]["tags"]) == set(OURS)
    log = volumes_sandbox.requests("digitalocean")
    assert sum(r["method"] == "POST" and r["path"].endswith("/snapshots") for r in log) == 1
    assert any(r["path"] == f"/v2/volumes/{VOLUME}/snapshots" and r["method"] == "GET" for r in log)


def test_a_volume_detached_since_keeps_its_snapshots(tmp_path, volumes_sandbox, tokens, clock):
    """A volume no longer attached is not a target: its snapshots are neither made nor
    deleted; one that is gone is an orphan, kept until its absence is certain and old."""
    policy = write_policy(tmp_path, WEB_VOLUMES)
    state = volumes_sandbox.dump_state()
    state["volumes"] = [v for v in state["volumes"] if v["id"] != VOLUME]
    volumes_sandbox.load_state(state)
    before = volume_snapshots(volumes_sandbox)
    assert main(["apply", "--policy", policy], clock=clock) == 0
    assert volume_snapshots(volumes_sandbox) == before


def test_hetzner_target_with_volumes_is_refused_by_validate(tmp_path, sandbox, tokens, capsys):
    policy = write_policy(tmp_path, WEB, {**DB, "volumes": True})
    assert main(["validate", "--policy", policy]) == 1
    err = capsys.readouterr()
    text = err.out + err.err
    assert "snapshot-policy.yaml" in text
    assert "targets[1].volumes" in text or "targets.1.volumes" in text
    assert "no volume snapshots" in text and "remove volumes" in text
    assert "Traceback" not in text


def test_a_droplet_naming_a_volume_the_listing_lacks_fails_and_deletes_none_of_its_snapshots(
    tmp_path, volumes_sandbox, tokens, capsys, clock
):
    """Two views disagree (§5.12): the droplet names a volume the volume listing does not
    show. Nothing is decided for that volume, and its snapshots are no orphans to prune."""
    policy = write_policy(tmp_path, WEB_VOLUMES)
    volumes_sandbox.inject(
        "patch",
        service="digitalocean",
        method="GET",
        path=r"^/v2/volumes$",
        patch={"volumes": [], "meta": {"total": 0}},
        count=None,
    )
    before = volume_snapshots(volumes_sandbox)
    assert main(["apply", "--policy", policy], clock=clock) == 2
    assert volume_snapshots(volumes_sandbox) == before
    out = unwrapped(capsys.readouterr().out)
    assert f"names volume(s) {VOLUME} that the account's volume listing lacks" in out


def test_a_volume_listing_that_keeps_changing_withholds_the_accounts_deletions(
    tmp_path, volumes_sandbox, tokens, capsys, clock
):
    """A listing that does not hold still while read (§5.12): here the volume listing
    announces more volumes than it ever shows. The snapshots are made; nothing is deleted."""
    policy = write_policy(tmp_path, WEB_VOLUMES)
    volumes_sandbox.inject(
        "patch",
        service="digitalocean",
        method="GET",
        path=r"^/v2/volumes$",
        patch={"meta": {"total": 5}},
        count=None,
    )
    before = volume_snapshots(volumes_sandbox)
    droplet_before = len(volumes_sandbox.dump_state()["snapshots"])
    assert main(["apply", "--policy", policy], clock=clock) == 2
    after = volume_snapshots(volumes_sandbox)
    assert set(before) < set(after) and len(after) == len(before) + 1  # made, none deleted
    assert len(volumes_sandbox.dump_state()["snapshots"]) == droplet_before + 1
    out = unwrapped(capsys.readouterr().out)
    assert "DigitalOcean's volume listing changed while it was read" in out


def test_validate_online_names_the_volumes_a_target_matched(
    tmp_path, volumes_sandbox, tokens, capsys
):
    policy = write_policy(tmp_path, WEB_VOLUMES)
    assert main(["validate", "--online", "--policy", policy]) == 0
    out = unwrapped(capsys.readouterr().out)
    assert f"web-1-pgdata (digitalocean volume {VOLUME})" in out
    assert "web-1 (digitalocean server 3164444)" in out


def test_hooks_run_once_around_the_droplets_snapshot_not_per_volume(
    tmp_path, volumes_sandbox, tokens, clock
):
    ran = tmp_path / "hooks.log"
    hooks = {
        "before": f"echo before $SNAPSHOT_POLICY_SNAPSHOT >> {ran}",
        "after": f"echo after $SNAPSHOT_POLICY_SNAPSHOT >> {ran}",
        "shell": True,
    }
    policy = write_policy(tmp_path, {**WEB_VOLUMES, "hooks": hooks})
    assert main(["apply", "--policy", policy], clock=clock) == 0
    name = f"web-1-{stamp(clock.now)}"
    assert ran.read_text().split("\n") == [f"before {name}", f"after {name}", ""]
    assert any(
        s["name"] == f"web-1-pgdata-{stamp(clock.now)}"
        for s in volume_snapshots(volumes_sandbox).values()
    )


def test_a_lost_reply_that_cannot_be_looked_for_fails_and_the_next_run_adopts_it(
    tmp_path, volumes_sandbox, tokens, clock
):
    """The reply is lost and the volume's listing cannot be read either (refused, so the test
    waits for no retries): the target fails (nothing deleted for it), the journal keeps the
    start, and the next run finds the snapshot made with our tags and makes no second one
    (§5.7)."""
    policy = write_policy(tmp_path, WEB_VOLUMES)
    volumes_sandbox.inject(
        "lose_reply",
        service="digitalocean",
        method="POST",
        path=r"^/v2/volumes/[^/]+/snapshots$",
        count=1,
    )
    volumes_sandbox.inject(
        "error",
        service="digitalocean",
        method="GET",
        path=r"^/v2/volumes/[^/]+/snapshots$",
        status=404,
        count=None,
    )
    before = volume_snapshots(volumes_sandbox)
    assert main(["apply", "--policy", policy], clock=clock) == 2
    after = volume_snapshots(volumes_sandbox)
    made_now = set(after) - set(before)
    assert len(made_now) == 1 and set(before) <= set(after)  # made once, none deleted
    volumes_sandbox.clear_faults()

    clock.advance(minutes=5)
    assert main(["apply", "--policy", policy], clock=clock) == 0
    final = volume_snapshots(volumes_sandbox)
    assert made_now <= set(final)
    assert (
        sum(
            s["name"].startswith("web-1-pgdata-") and set(OURS) <= set(s["tags"])
            for s in final.values()
        )
        == 3
    )  # keep_last 3, the one made counted once
    posts = [
        r
        for r in volumes_sandbox.requests("digitalocean")
        if r["method"] == "POST" and r["path"] == f"/v2/volumes/{VOLUME}/snapshots"
    ]
    assert len(posts) == 1


def test_soft_delete_marks_a_volumes_snapshots_and_pin_finds_them(
    tmp_path, volumes_sandbox, tokens, capsys, clock
):
    """Review (issue 23): a volume snapshot is tagged as DigitalOcean names it
    (`volume_snapshot`, not `image`) and read by its UUID, so soft delete marks, deletes after
    the grace and takes marks back on a volume's snapshots as on a droplet's, and pin finds
    one; before, each mark failed the volume's target every run and pin called it gone."""
    path = tmp_path / "snapshot-policy.yaml"
    settings = {"owner": OWNER, "lock_file": str(tmp_path / "lock"), "soft_delete": "1d"}
    path.write_text(policy_yaml(WEB_VOLUMES, settings=settings))
    policy = str(path)
    doomed = ["00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000004"]
    code = main(["apply", "--policy", policy], clock=clock)
    out = unwrapped(capsys.readouterr().out)
    assert code == 0, out
    after = volume_snapshots(volumes_sandbox)
    day = (clock.now.date() + timedelta(days=1)).isoformat()
    assert all(f"snapshot-policy-pending-delete-{day}" in after[i]["tags"] for i in doomed)
    kept = "00000000-0000-4000-8000-000000000002"
    assert main(["pin", "--policy", policy, kept, "--until", day], clock=clock) == 0
    assert f"snapshot-policy-pinned-until-{day}" in volume_snapshots(volumes_sandbox)[kept]["tags"]
    capsys.readouterr()
    assert main(["undelete", "--policy", policy, doomed[0]], clock=clock) == 0
    assert not any("pending" in t for t in volume_snapshots(volumes_sandbox)[doomed[0]]["tags"])
    clock.advance(days=1, hours=1)
    assert main(["apply", "--policy", policy], clock=clock) == 0
    left = volume_snapshots(volumes_sandbox)
    assert doomed[0] in left and doomed[1] not in left and kept in left
