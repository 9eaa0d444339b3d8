"""What the proof of issue 19 (proof.py) found, each as its minimal scenario, fixed since.
Fast and deterministic: part of the default run."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from snapshot_policy.engine.execute import Stop
from tests.chaos.harness import DO_TOKEN, HZ_TOKEN, World
from tests.chaos.proof import KILLED_AFTER_AUDIT, SERVER_PATH, TappedSandbox, owners

NOW = datetime(2026, 10, 20, 9, 0, tzinfo=timezone.utc)


def policy(owner: str, account: str, server_id: int) -> str:
    return f"""\
version: 1
accounts:
  do: {{provider: digitalocean, token: env:CHAOS_DO_TOKEN, endpoint: "@DO@"}}
  hz: {{provider: hetzner, token: env:CHAOS_HZ_TOKEN, endpoint: "@HZ@"}}
targets:
  - name: web
    account: {account}
    ids: [{server_id}]
    schedule: {{every: 24h}}
    retention: {{keep_last: 2}}
settings:
  owner: {owner}
  lock_file: "@FOLDER@/lock"
"""


def state(snapshots: list[dict] = ()) -> dict:
    return {
        "accounts": [
            {"name": "do", "provider": "digitalocean", "tokens": [DO_TOKEN], "rate_limit": 10**9},
            {"name": "hz", "provider": "hetzner", "tokens": [HZ_TOKEN], "rate_limit": 10**9},
        ],
        "servers": [
            {"account": "do", "id": 101, "name": "web-1"},
            {"account": "hz", "id": 201, "name": "db-1"},
        ],
        "snapshots": list(snapshots),
    }


def test_two_configurations_snapshotting_one_droplet_in_the_same_second_each_mark_their_own(
    tmp_path,
):
    beta = World(tmp_path / "beta", state(), policy("beta", "do", 101), NOW, action_seconds=0.05)
    alpha = World(tmp_path / "alpha", {}, policy("alpha", "do", 101), NOW, shared=beta.sandbox)
    try:
        beta.run()
        alpha.run()
        made = {s["id"]: s for s in beta.snapshots().values() if s["server_id"] == 101}
        assert sorted(tuple(owners(s)) for s in made.values()) == [("alpha",), ("beta",)], made
    finally:
        alpha.close()
        beta.close()


@pytest.mark.parametrize("theirs", ["beta's", "unmarked"])
def test_a_same_named_image_on_an_earlier_page_than_ours_is_never_marked(tmp_path, theirs):
    """Another image of droplet 101 made in the same second, so named as alpha names its own:
    beta's (marked), or one not marked yet (beta's killed before it could mark it, or made by
    hand). It ends page 1 of the listing, alpha's new image begins page 2. Alpha, looking for
    its finished image by (droplet, name), took page 1's match as found, never read page 2,
    and marked the other image as its own."""
    hand = [
        {
            "account": "do",
            "server_id": 101,
            "id": n,
            "name": f"web-1 by hand {n}",
            "created": "2026-10-01T00:00:00Z",
        }
        for n in range(1, 200)
    ]  # with the other image, page 1 of 200
    if theirs == "unmarked":
        hand.append(
            {
                "account": "do",
                "server_id": 101,
                "id": 200,
                "name": f"web-1-{NOW:%Y%m%d%H%M%S}",
                "created": NOW.isoformat(),
            }
        )
    beta = World(tmp_path / "beta", state(hand), policy("beta", "do", 101), NOW)
    alpha = World(tmp_path / "alpha", {}, policy("alpha", "do", 101), NOW, shared=beta.sandbox)
    try:
        if theirs == "beta's":
            beta.run()
        alpha.run()
        made = {i: s for i, s in beta.snapshots().items() if i not in range(1, 200)}
        assert len(made) == 2 and len({s["name"] for s in made.values()}) == 1, made
        expected = [(), ("alpha",)] if theirs == "unmarked" else [("alpha",), ("beta",)]
        assert sorted(tuple(owners(s)) for s in made.values()) == expected, made
        assert owners(made[max(made)]) == {"alpha"}, made  # the later image is alpha's
    finally:
        alpha.close()
        beta.close()


def test_a_same_named_image_of_another_configuration_is_never_marked_though_ours_is_gone(
    tmp_path,
):
    """Alpha's new image is deleted (by other hands) as soon as its action is seen finished;
    beta's image of the same name, made in the same second, is all the listing has: alpha
    says its snapshot is missing and marks nothing (docs/promises.md §5)."""
    beta = World(tmp_path / "beta", state(), policy("beta", "do", 101), NOW)
    alpha = World(tmp_path / "alpha", {}, policy("alpha", "do", 101), NOW, shared=beta.sandbox)
    try:
        beta.run()
        (theirs,) = beta.snapshots()
        ours = theirs + 1  # the sandbox's next id
        # once alpha's image exists, the next read of the action listing deletes it
        beta.sandbox.inject(
            "shift",
            service="digitalocean",
            method="GET",
            path=r"^/v2/actions$",
            resource="snapshots",
            delete=[ours],
            count=None,
        )
        result = alpha.run()
        beta.sandbox.clear_faults()
        assert ours not in beta.snapshots()
        assert owners(beta.snapshots()[theirs]) == {"beta"}
        (outcome,) = result.report.outcomes
        assert not outcome.ok and "does not list it" in outcome.error, outcome
    finally:
        alpha.close()
        beta.close()


def test_a_run_killed_between_the_audit_line_and_the_journal_audits_each_deletion_once(tmp_path):
    seeded = [
        {
            "account": "hz",
            "server_id": 201,
            "name": f"db-1-2026101{d}090000",
            "created": f"2026-10-1{d}T09:00:00Z",
            "labels": {
                "managed-by": "snapshot-policy",
                "snapshot-policy/server-id": "201",
                "snapshot-policy/owner": "alpha",
            },
        }
        for d in range(5, 10)
    ]
    world = World(tmp_path, state(seeded), policy("alpha", "hz", 201), NOW, action_seconds=0.05)
    try:
        world.journal_file.write_text("[]")
        journal_before = world.journal_file.read_text()
        first = world.run()
        deleted = sorted(first.deleted)
        assert deleted
        # What a kill leaves after the deletions' audit lines and before the journal batch that
        # crosses them off is written: the journal still says they are being deleted.
        entries = json.loads(journal_before) + [
            {
                "account": "hz",
                "server_id": "201",
                "name": first.deleted[i]["name"],
                "started": NOW.isoformat(),
                "deleting": str(i),
                "reason": "no retention rule keeps it",
            }
            for i in deleted
        ]
        world.journal_file.write_text(json.dumps(entries))
        second = world.run()
        again = [
            line
            for line in second.audit
            if line["event"] == "deleted" and line["reason"].endswith(KILLED_AFTER_AUDIT)
        ]
        assert not again, f"audited a second time: {[line['snapshot_id'] for line in again]}"
    finally:
        world.close()


def test_an_owed_after_hook_runs_even_when_the_next_run_cannot_read_its_server(tmp_path):
    record = tmp_path / "hooks.log"
    hooks = (
        f'hooks: {{before: [sh, -c, "echo before >> {record}"], after: [sh, -c, "echo after >> '
        f'{record}"], timeout: 5}}'
    )
    text = policy("alpha", "do", 101).replace(
        "    retention: {keep_last: 2}\n", f"    retention: {{keep_last: 2}}\n    {hooks}\n"
    )
    world = World(tmp_path / "alpha", state(), text, NOW, action_seconds=0.05)
    try:
        # What a run killed while the before hook ran leaves: the journal owes its after hook.
        record.write_text("before\n")
        world.journal_file.write_text(
            json.dumps(
                [
                    {
                        "account": "do",
                        "server_id": "101",
                        "name": "web-1-20261020080000",
                        "started": "2026-10-20T08:00:00+00:00",
                        "after": "web",
                    },
                ]
            )
        )
        world.inject("error", "list", service="digitalocean", status=503, count=None)
        result = world.run()
        said = " ".join(f.reason for f in result.report.failures)
        assert record.read_text().splitlines() == ["before", "after"] or "after hook" in said, said
    finally:
        world.close()


@pytest.mark.timed_waits
def test_a_drill_server_a_killed_run_sent_the_delete_of_is_audited_once_by_the_next_run(
    tmp_path,
):
    """A run killed after the cloud carried out a drill server's DELETE and before the reply
    arrived: the journal still names the server, the audit log never said it was deleted.
    The next run, finding it gone, crossed it off without a word; now it audits it, once."""
    text = policy("alpha", "do", 101).replace(
        "    retention: {keep_last: 2}\n",
        "    retention: {keep_last: 2}\n    drill: {every: 1d, boot_timeout: 5}\n",
    )
    clock = [NOW]
    made = {
        "account": "do",
        "server_id": 101,
        "name": "web-1-20261019090000",
        "created": "2026-10-19T09:00:00Z",
        "tags": ["snapshot-policy", "snapshot-policy-owner-alpha"],
    }
    sandbox = TappedSandbox(
        state([made]), action_seconds=0.05, boot_seconds=0.05, clock=lambda: clock[0]
    )
    sandbox.start()
    world = World(tmp_path, {}, text, NOW, shared=sandbox, drills=True)
    stop = Stop()

    def kill(request) -> bool:  # the reply to the DELETE never arrives, nor anything after it
        if request.method != "DELETE" or not SERVER_PATH.match(request.path):
            return False
        for service in ("digitalocean", "hetzner"):
            sandbox.inject("drop", service=service, count=None)
        stop.set("SIGKILL")
        return True

    try:
        sandbox.tap, sandbox.running = kill, ("alpha", 1, world.journal_file)
        world.run(stop=stop)
        sandbox.tap = None
        sandbox.clear_faults()
        assert len(sandbox.deletions) == 1
        gone = str(sandbox.deletions[0].server.id)
        assert [e["drill_server"] for e in json.loads(world.journal_file.read_text())] == [gone]
        for later in (1, 2):
            world.now = clock[0] = NOW + timedelta(hours=later)
            world.run()
            lines = [json.loads(line) for line in world.audit_file.read_text().splitlines()]
            said = [
                line
                for line in lines
                if line["event"] == "drill server deleted" and line["drill_server_id"] == gone
            ]
            assert len(said) == 1, said
            assert "interrupted run" in said[0]["reason"]
            assert json.loads(world.journal_file.read_text()) == []
    finally:
        world.close()
        sandbox.stop()


@pytest.mark.timed_waits
def test_a_drill_in_the_same_second_as_an_undeleted_one_of_an_earlier_run_loses_neither(
    tmp_path,
):
    """Two drills of one server in one second (a second run in it, or a clock set back) gave
    their servers one name; the journal, which tells drill servers apart by name, gave both
    entries the second server's id, and the first server was never deleted."""
    text = policy("alpha", "do", 101).replace(
        "    retention: {keep_last: 2}\n",
        "    retention: {keep_last: 2}\n    drill: {every: 1d, boot_timeout: 5}\n",
    )
    made = {
        "account": "do",
        "server_id": 101,
        "name": "web-1-20261019090000",
        "created": "2026-10-19T09:00:00Z",
        "tags": ["snapshot-policy", "snapshot-policy-owner-alpha"],
    }
    clock = [NOW]
    sandbox = TappedSandbox(
        state([made]), action_seconds=0.05, boot_seconds=0.05, clock=lambda: clock[0]
    )
    sandbox.start()
    world = World(tmp_path, {}, text, NOW, shared=sandbox, drills=True)
    stop = Stop()

    def kill(request) -> bool:  # killed once its drill server was made
        if request.method != "POST" or request.path != "/v2/droplets":
            return False
        for service in ("digitalocean", "hetzner"):
            sandbox.inject("drop", service=service, count=None)
        stop.set("SIGKILL")
        return True

    def drill_servers() -> list[str]:
        with sandbox.state.lock:
            return sorted(s.name for s in sandbox.state.servers.values() if s.name[:6] == "drill-")

    try:
        sandbox.tap = kill
        world.drill(stop=stop)
        sandbox.tap = None
        sandbox.clear_faults()
        assert len(drill_servers()) == 1
        # The same second: the leftover cannot be deleted now, and the new drill's server
        # cannot be either.
        world.inject("error", "delete", service="digitalocean", status=500, count=None)
        world.drill()
        sandbox.clear_faults()
        assert len(drill_servers()) == 2
        world.now = clock[0] = NOW + timedelta(hours=1)
        world.run()
        assert drill_servers() == []
        assert json.loads(world.journal_file.read_text()) == []
    finally:
        world.close()
        sandbox.stop()


VOLUME = "5e1f0000-0000-4000-8000-000000000101"


def test_soft_delete_marks_a_volume_snapshot_retention_lets_go(tmp_path):
    """Found by the proof once it covered issue 23: under `settings.soft_delete` a volume
    snapshot (`volumes: true`) that retention lets go must be marked pending deletion, as a
    droplet's image is (docs/promises.md §5.16, §5.18). The DigitalOcean adapter's
    `set_snapshot_labels` names every snapshot `resource_type: image` when it tags or untags
    it (`mark_snapshot` already picks `volume_snapshot` for a UUID), so DigitalOcean answers
    404 and the mark is never written: the target fails every run and its volume snapshots
    are never pruned (pin, unpin and undelete of a volume snapshot fail the same way). The
    review of issue 23 found it at the same time: marks now name a UUID `volume_snapshot`."""
    made = [
        {
            "account": "do",
            "id": f"5e1f0000-0000-4000-8000-{n:012d}",
            "volume_id": VOLUME,
            "name": f"web-1-data-{NOW - timedelta(days=n):%Y%m%d%H%M%S}",
            "created": (NOW - timedelta(days=n)).isoformat(),
            "tags": ["snapshot-policy", "snapshot-policy-owner-alpha"],
        }
        for n in (1, 2, 3)
    ]
    cloud = state() | {
        "volumes": [{"account": "do", "id": VOLUME, "name": "data", "droplet_ids": [101]}],
        "volume_snapshots": made,
    }
    text = policy("alpha", "do", 101).replace(
        "retention: {keep_last: 2}", "retention: {keep_last: 2}\n    volumes: true"
    )
    text += "  soft_delete: 1d\n"
    world = World(tmp_path / "alpha", cloud, text, NOW)
    try:
        result = world.run()
        volume = next(o for o in result.report.outcomes if o.plan.target.volume_of)
        assert volume.ok, volume.error
        tags = {s["id"]: s["tags"] for s in world.sandbox.dump_state()["volume_snapshots"]}
        assert "snapshot-policy-pending-delete-2026-10-21" in tags[made[2]["id"]], tags
    finally:
        world.close()


def test_pin_takes_a_volume_snapshot(tmp_path, monkeypatch, capsys):
    """Found by the proof once it covered issue 23: `snapshot-policy pin ID --until DATE` on
    a managed volume snapshot (`volumes: true`) must pin it (docs/promises.md §5.16 names no
    exception for volumes, §5.18 manages them as droplet snapshots). The DigitalOcean
    adapter's `get_snapshot` answers None for an id that is not a number, so pin (unpin,
    undelete alike) refused with "snapshot … is gone", and the tag write would name it an
    image (the finding above). Fixed with it: a UUID is read as a volume snapshot."""
    from snapshot_policy.cli import main
    from tests.chaos.harness import ENV

    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    snapshot = {
        "account": "do",
        "id": f"5e1f0000-0000-4000-8000-{1:012d}",
        "volume_id": VOLUME,
        "name": f"web-1-data-{NOW - timedelta(days=1):%Y%m%d%H%M%S}",
        "created": (NOW - timedelta(days=1)).isoformat(),
        "tags": ["snapshot-policy", "snapshot-policy-owner-alpha"],
    }
    cloud = state() | {
        "volumes": [{"account": "do", "id": VOLUME, "name": "data", "droplet_ids": [101]}],
        "volume_snapshots": [snapshot],
    }
    text = policy("alpha", "do", 101).replace(
        "retention: {keep_last: 2}", "retention: {keep_last: 2}\n    volumes: true"
    )
    world = World(tmp_path / "alpha", cloud, text, NOW)
    try:
        until = (NOW + timedelta(days=3)).date().isoformat()
        argv = ["pin", "--policy", str(world.folder / "policy.yaml"), snapshot["id"]]
        code = main([*argv, "--until", until], clock=lambda: NOW)
        _, err = capsys.readouterr()
        assert code == 0, err
        (tags,) = [s["tags"] for s in world.sandbox.dump_state()["volume_snapshots"]]
        assert f"snapshot-policy-pinned-until-{until}" in tags, tags
    finally:
        world.close()
