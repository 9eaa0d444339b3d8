"""Per-server overrides through the CLI against the sandbox, on both clouds (issue 23, item 4;
docs/promises.md §4.2): a labelled server keeps what its label says while its neighbour keeps
the policy's; a bad label fails that server alone (exit 2); hcloud-snapshot-as-backup's
`AUTOBACKUP.KEEP-LAST` and snapshots are read only with `server_overrides: autobackup`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snapshot_policy.cli import main
from snapshot_policy.output.jsondoc import iso_utc
from snapshot_policy.sandbox import Sandbox
from tests.e2e.cloud import DO_TOKEN, HZ_TOKEN, daily, iso, legacy_name, made, unwrapped
from tests.e2e.policies import DEBUG_LOG, policy_yaml

ACCOUNTS = [
    {"name": "do", "provider": "digitalocean", "tokens": [DO_TOKEN]},
    {"name": "hz", "provider": "hetzner", "tokens": [HZ_TOKEN]},
]
WEB = {"name": "web", "account": "do", "label_selector": "prod", "retention": {"keep_last": 2}}
DB = {"name": "db", "account": "hz", "label_selector": "env=prod", "retention": {"keep_last": 2}}
DAYS = range(1, 7)  # six old snapshots a server


def fleet(now, db_2_labels=None):
    """web-1 tagged to keep 4 beside web-2, db-1 labelled to keep 4 beside db-2; each server
    with six days of snapshots named as snapshots.py named them."""
    return {
        "accounts": ACCOUNTS,
        "servers": [
            droplet(3164444, "web-1", ["prod", "snapshot-policy:keep-last:4"]),
            droplet(3164445, "web-2", ["prod"]),
            server(4711, "db-1", {"env": "prod", "snapshot-policy/keep-last": "4"}),
            server(4712, "db-2", {"env": "prod", **(db_2_labels or {})}),
        ],
        "snapshots": [
            *daily("do", 3164444, "web-1", now, DAYS),
            *daily("do", 3164445, "web-2", now, DAYS),
            *daily("hz", 4711, "db-1", now, DAYS),
            *daily("hz", 4712, "db-2", now, DAYS),
        ],
    }


def droplet(droplet_id, name, tags):
    return {"account": "do", "id": droplet_id, "name": name, "tags": tags}


def server(server_id, name, labels):
    return {"account": "hz", "id": server_id, "name": name, "labels": labels}


def sandbox_of(seed, clock, monkeypatch):
    sandbox = Sandbox(seed, action_seconds=0.05, clock=clock)
    sandbox.__enter__()
    for name, value in sandbox.env().items():
        monkeypatch.setenv(name, value)
    return sandbox


@pytest.fixture
def cloud_of(clock, monkeypatch, tokens):
    """Start a sandbox seeded with what the test gives; stopped at the end."""
    started = []

    def start(seed):
        started.append(sandbox_of(seed, clock, monkeypatch))
        return started[-1]

    yield start
    for sandbox in started:
        sandbox.__exit__(None, None, None)


def names(sandbox, server_id):
    """A server's snapshot names, newest first; the one the run made reads NEW."""
    snapshots = [s for s in sandbox.dump_state()["snapshots"] if s.get("server_id") == server_id]
    now = iso_utc(sandbox.state.clock())
    return [
        ("NEW" if s["created"] == now else s["name"])
        for s in sorted(snapshots, key=lambda s: (s["created"], s["id"]), reverse=True)
    ]


def newest(clock, server, count):
    return [legacy_name(server, clock.now, d) for d in range(1, count + 1)]


def test_a_labelled_server_keeps_what_its_label_says_and_its_neighbour_the_policys(
    tmp_path, cloud_of, clock, capsys
):
    sandbox = cloud_of(fleet(clock.now))
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(policy_yaml(WEB, DB, settings=DEBUG_LOG))

    assert main(["plan", "--policy", str(policy)], clock=clock) == 0
    out = unwrapped(capsys.readouterr().out)
    assert "retention keep_last 4 (tag snapshot-policy:keep-last:4 on web-1) (timezone" in out
    assert "retention keep_last 4 (label snapshot-policy/keep-last on db-1) (timezone" in out
    assert out.count("retention keep_last 2 (timezone UTC)") == 2  # web-2 and db-2

    assert main(["plan", "--policy", str(policy), "--output", "json"], clock=clock) == 0
    document = json.loads(capsys.readouterr().out)
    sources = {t["server_name"]: t["rule_sources"] for t in document["targets"]}
    assert sources == {
        "web-1": {"keep_last": "tag snapshot-policy:keep-last:4 on web-1"},
        "web-2": {},
        "db-1": {"keep_last": "label snapshot-policy/keep-last on db-1"},
        "db-2": {},
    }
    assert {t["server_name"]: t["retention"] for t in document["targets"]}["db-1"] == "keep_last 4"

    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    capsys.readouterr()
    assert names(sandbox, 3164444) == ["NEW", *newest(clock, "web-1", 3)]
    assert names(sandbox, 3164445) == ["NEW", *newest(clock, "web-2", 1)]
    assert names(sandbox, 4711) == ["NEW", *newest(clock, "db-1", 3)]
    assert names(sandbox, 4712) == ["NEW", *newest(clock, "db-2", 1)]


def test_a_bad_label_fails_that_server_only_with_exit_2(tmp_path, cloud_of, clock, capsys):
    sandbox = cloud_of(fleet(clock.now, db_2_labels={"snapshot-policy/keep-last": "lots"}))
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(policy_yaml(WEB, DB, settings=DEBUG_LOG))
    before = names(sandbox, 4712)

    assert main(["apply", "--policy", str(policy)], clock=clock) == 2
    out, err = capsys.readouterr()
    assert (
        "db: FAILED: target db, server db-2 (4712): label snapshot-policy/keep-last=lots: "
        "'lots' is not a number of snapshots; write a whole number from 0 to 100000"
    ) in unwrapped(out + err)
    assert names(sandbox, 4712) == before  # nothing made, nothing deleted
    assert names(sandbox, 4711) == ["NEW", *newest(clock, "db-1", 3)]  # its neighbour ran
    assert names(sandbox, 3164445) == ["NEW", *newest(clock, "web-2", 1)]
    assert "1 failed" in err and "(failed: db)" in err


def test_a_bad_tag_fails_that_droplet_only_with_exit_2(tmp_path, cloud_of, clock, capsys):
    seed = fleet(clock.now)
    seed["servers"][1]["tags"] = ["prod", "snapshot-policy:schedule-cron:x"]
    sandbox = cloud_of(seed)
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(policy_yaml(WEB, settings=DEBUG_LOG))
    before = names(sandbox, 3164445)

    assert main(["apply", "--policy", str(policy)], clock=clock) == 2
    out, err = capsys.readouterr()
    assert (
        "web: FAILED: target web, server web-2 (3164445): tag snapshot-policy:schedule-cron:x: "
        "a cron expression cannot be written in a label or tag"
    ) in unwrapped(out + err)
    assert names(sandbox, 3164445) == before
    assert names(sandbox, 3164444) == ["NEW", *newest(clock, "web-1", 3)]


def test_server_overrides_off_reads_no_label(tmp_path, cloud_of, clock, capsys):
    sandbox = cloud_of(fleet(clock.now, db_2_labels={"snapshot-policy/keep-last": "lots"}))
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(policy_yaml({**DB, "server_overrides": "off"}, settings=DEBUG_LOG))

    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    capsys.readouterr()
    assert names(sandbox, 4711) == ["NEW", *newest(clock, "db-1", 1)]
    assert names(sandbox, 4712) == ["NEW", *newest(clock, "db-2", 1)]


# -- coming from hcloud-snapshot-as-backup ----------------------------------------------------


def autobackup_name(server, now, days_ago):
    """How hcloud-snapshot-as-backup names a snapshot by default: `%name%-%timestamp%`, the
    server's name and the Unix time."""
    return f"{server}-{int(made(now, days_ago).timestamp())}"


def autobackup_snapshot(server_id, name, now, days_ago, labels=None):
    return {
        "account": "hz",
        "server_id": server_id,
        "name": name,
        "created": iso(made(now, days_ago)),
        "labels": {"AUTOBACKUP": ""} if labels is None else labels,
    }


def autobackup_fleet(now):
    """db-1 with AUTOBACKUP.KEEP-LAST=3 and five snapshots the tool made, one its operator kept
    by removing the label, one named like another; db-2 with the tool's default and a
    snapshot named after db-1."""
    return {
        "accounts": ACCOUNTS,
        "servers": [
            server(4711, "db-1", {"AUTOBACKUP": "true", "AUTOBACKUP.KEEP-LAST": "3"}),
            server(4712, "db-2", {"AUTOBACKUP": "true"}),
            server(4713, "db-3", {}),
        ],
        "snapshots": [
            *(autobackup_snapshot(4711, autobackup_name("db-1", now, d), now, d) for d in DAYS[:5]),
            autobackup_snapshot(4711, autobackup_name("db-1", now, 9), now, 9, labels={}),
            autobackup_snapshot(4711, "x" + autobackup_name("db-1", now, 10), now, 10),
            autobackup_snapshot(4712, autobackup_name("db-1", now, 2), now, 2),
            autobackup_snapshot(4713, autobackup_name("db-3", now, 2), now, 2),
        ],
    }


AUTO = {
    "name": "auto",
    "account": "hz",
    "label_selector": "AUTOBACKUP=true",
    "server_overrides": "autobackup",
    "retention": {"keep_last": 7},
}


def test_autobackup_adopts_its_snapshots_and_reads_keep_last(tmp_path, cloud_of, clock, capsys):
    sandbox = cloud_of(autobackup_fleet(clock.now))
    policy = tmp_path / "snapshot-policy.yaml"
    every = {"schedule": {"every": "24h"}}
    policy.write_text(policy_yaml(AUTO, defaults=every, settings=DEBUG_LOG))
    db_1, db_2 = names(sandbox, 4711), names(sandbox, 4712)

    assert main(["plan", "--policy", str(policy)], clock=clock) == 0
    out = unwrapped(capsys.readouterr().out)
    assert (
        "retention keep_last 3 (hcloud-snapshot-as-backup's label AUTOBACKUP.KEEP-LAST on db-1)"
    ) in out
    assert "auto: db-3" not in out  # not selected: no AUTOBACKUP=true
    assert out.count(", adopted)") == 5

    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    capsys.readouterr()
    # keep_last 3 counts the new one; the one without its label and the look-alike stay
    assert names(sandbox, 4711) == ["NEW", *db_1[:2], *db_1[5:]]
    assert db_1[5:] == [
        autobackup_name("db-1", clock.now, 9),
        "x" + autobackup_name("db-1", clock.now, 10),
    ]
    assert names(sandbox, 4712) == ["NEW", *db_2]  # named after db-1: not db-2's to delete
    assert len(names(sandbox, 4713)) == 1


def test_without_autobackup_its_label_and_snapshots_are_left_alone(
    tmp_path, cloud_of, clock, capsys
):
    sandbox = cloud_of(autobackup_fleet(clock.now))
    policy = tmp_path / "snapshot-policy.yaml"
    labels = {key: value for key, value in AUTO.items() if key != "server_overrides"}
    policy.write_text(policy_yaml(labels, defaults={"schedule": {"every": "24h"}}))
    db_1 = names(sandbox, 4711)

    assert main(["plan", "--policy", str(policy), "--output", "json"], clock=clock) == 0
    document = json.loads(capsys.readouterr().out)
    db = {t["server_name"]: t for t in document["targets"]}["db-1"]
    assert db["retention"] == "keep_last 7" and db["rule_sources"] == {}
    assert db["keep"] == [] and db["delete"] == []
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    assert names(sandbox, 4711) == ["NEW", *db_1]


def test_status_says_where_a_schedule_came_from(tmp_path, cloud_of, clock, capsys):
    seed = autobackup_fleet(clock.now)
    seed["servers"][1]["labels"]["snapshot-policy/schedule-every"] = "12h"
    cloud_of(seed)
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(policy_yaml(AUTO, defaults={"schedule": {"every": "24h"}}))

    main(["status", "--policy", str(policy)], clock=clock)
    out = unwrapped(capsys.readouterr().out)
    assert "schedule every 12h (label snapshot-policy/schedule-every on db-2)" in out
    assert "schedule every 24h: due now" in out  # db-1's, the policy's
    main(["status", "--policy", str(policy), "--output", "json"], clock=clock)
    document = json.loads(capsys.readouterr().out)
    assert {t["server_name"]: t["rule_sources"] for t in document["targets"]} == {
        "db-1": {"keep_last": "hcloud-snapshot-as-backup's label AUTOBACKUP.KEEP-LAST on db-1"},
        "db-2": {"schedule": "label snapshot-policy/schedule-every on db-2"},
    }


README = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_readmes_migration_policy_plans_what_it_says(tmp_path, cloud_of, clock, capsys):
    """The policy under "Coming from hcloud-snapshot-as-backup", its token read from the
    sandbox's variable: it adopts that tool's snapshots and reads AUTOBACKUP.KEEP-LAST."""
    section = README.split("## Coming from hcloud-snapshot-as-backup", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    cloud_of(autobackup_fleet(clock.now))
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(example.replace("env:HCLOUD_TOKEN", "env:TEST_HZ_TOKEN"))

    assert main(["validate", "--policy", str(policy)], clock=clock) == 0
    assert main(["plan", "--policy", str(policy)], clock=clock) == 0
    out = unwrapped(capsys.readouterr().out)
    assert "keep_last 3 (hcloud-snapshot-as-backup's label AUTOBACKUP.KEEP-LAST on db-1)" in out
    assert out.count(", adopted)") == 5


def test_validate_online_finds_a_bad_label_before_a_run(tmp_path, cloud_of, clock, capsys):
    cloud_of(fleet(clock.now, db_2_labels={"snapshot-policy/keep-dayly": "7"}))
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(policy_yaml(WEB, DB, settings=DEBUG_LOG))

    assert main(["validate", "--policy", str(policy)], clock=clock) == 0  # offline: no labels
    capsys.readouterr()
    code = main(["validate", "--online", "--policy", str(policy)], clock=clock)
    out, err = capsys.readouterr()
    assert code == 1, out + err
    assert (
        "server db-2 (4712): label snapshot-policy/keep-dayly=7: keep-dayly is not a rule "
        "that can be overridden; did you mean keep-daily?"
    ) in unwrapped(out + err)


def test_a_label_changed_after_plan_makes_apply_plan_refuse(tmp_path, cloud_of, clock, capsys):
    """A saved plan was decided by the rules the labels gave then: lowered since, apply --plan
    refuses rather than delete by rules nobody reviewed."""
    sandbox = cloud_of(fleet(clock.now))
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(policy_yaml(DB, settings=DEBUG_LOG))
    saved = tmp_path / "plan.json"
    assert main(["plan", "--policy", str(policy), "--out", str(saved)], clock=clock) == 0
    sandbox.state.servers[4711].labels["snapshot-policy/keep-last"] = "1"
    before = names(sandbox, 4711)
    capsys.readouterr()

    assert main(["apply", "--policy", str(policy), "--plan", str(saved)], clock=clock) == 1
    assert "retention, schedule or safety differ" in unwrapped(capsys.readouterr().err)
    assert names(sandbox, 4711) == before
