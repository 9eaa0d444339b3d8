"""A YAML policy over two accounts, planned against the sandbox through the CLI."""

from __future__ import annotations

import json
import re
import sys
from datetime import timedelta

import pytest

from snapshot_policy.cli import main
from tests.e2e.cloud import DO_TOKEN, HZ_TOKEN, daily, iso, legacy_name, made
from tests.e2e.policies import ACCOUNTS, policy_yaml

WEB = {"name": "web", "account": "do", "names": ["web-1"]}
DB = {
    "name": "db",
    "account": "hz",
    "ids": [4711],
    "schedule": {"every": "24h"},
    "adopt_legacy_names": True,
    "retention": {"keep_daily": 3},
}


def planned(*targets: dict, **sections) -> str:
    """The policy this file plans (WEB and DB when no targets are given): db adopts the legacy
    names, and the Hetzner token comes from HCLOUD_TOKEN, not from the policy."""
    return policy_yaml(
        *(targets or (WEB, DB)),
        accounts={"do": ACCOUNTS["do"], "hz": {"provider": "hetzner"}},
        defaults={"retention": {"keep_last": 2}},
        **sections,
    )


@pytest.fixture
def policy(tmp_path, sandbox, monkeypatch):
    monkeypatch.setenv("TEST_DO_TOKEN", DO_TOKEN)
    monkeypatch.setenv("HCLOUD_TOKEN", HZ_TOKEN)
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(planned())
    return path


def test_policy_plan_reads_each_account_once_and_writes_nothing(policy, sandbox, capsys, clock):
    sandbox.clear_requests()
    assert main(["plan", "--policy", str(policy), "--output", "json"], clock=clock) == 0
    document = json.loads(capsys.readouterr().out)
    web = next(t for t in document["targets"] if t["target"] == "web")
    db = next(t for t in document["targets"] if t["target"] == "db")
    # web has no marked snapshots and does not adopt: all of its snapshots are someone else's.
    assert web["delete"] == [] and len(web["skip"]) == 6
    assert web["create"] is not None
    # db adopts snapshots.py's names: 3 days kept (the new one counts), the rest deleted.
    assert [s["name"] for s in db["keep"]] == [legacy_name("db-1", clock.now, d) for d in (1, 2)]
    assert len(db["delete"]) == 3
    requests = sandbox.requests()
    assert {r["method"] for r in requests} == {"GET"}
    listings = [r for r in requests if r["path"] in ("/v2/snapshots", "/v1/images")]
    assert len(listings) == 2  # one snapshot listing per account


def test_plan_saves_the_plan_and_reports_pending_changes(policy, sandbox, tmp_path, capsys, clock):
    out = tmp_path / "plan.json"
    assert (
        main(
            ["plan", "--policy", str(policy), "--out", str(out), "--detailed-exitcode"], clock=clock
        )
        == 2
    )
    text = capsys.readouterr().out
    assert "+ create web-1-" in text and text.rstrip().endswith("2 target(s) with 2 server(s).")
    saved = json.loads(out.read_text())
    assert saved["summary"]["has_changes"] is True and saved["fingerprint"].startswith("sha256:")


def test_target_option_limits_the_plan_and_rejects_unknown_names(policy, sandbox, capsys, clock):
    assert main(["plan", "--policy", str(policy), "--target", "db"], clock=clock) == 0
    out = capsys.readouterr().out
    assert "db: db-1" in out and "web: web-1" not in out
    assert main(["plan", "--policy", str(policy), "--target", "nope"], clock=clock) == 1
    assert "no target named nope; targets: db, web" in capsys.readouterr().err


def test_a_missing_server_fails_its_target_only(policy, sandbox, capsys, clock):
    policy.write_text(planned(WEB, {**DB, "ids": [999]}))
    assert main(["plan", "--policy", str(policy)], clock=clock) == 1
    out = capsys.readouterr().out
    assert "db: FAILED: no server with id 999" in out and "+ create web-1-" in out


def test_validate_online_checks_tokens_and_servers(policy, sandbox, monkeypatch, capsys, clock):
    assert main(["validate", "--online", "--policy", str(policy)], clock=clock) == 0
    assert "checked online" in capsys.readouterr().out
    monkeypatch.setenv("TEST_DO_TOKEN", "wrong-token")
    assert main(["validate", "--online", "--policy", str(policy)], clock=clock) == 1
    err = capsys.readouterr().err
    assert "web: cannot read account do" in err and "401" in err and "wrong-token" not in err
    assert err.endswith("1 target(s) failed the online check.\n") and "0 error(s)" not in err


def test_validate_online_names_a_missing_server_with_a_did_you_mean(policy, sandbox, capsys, clock):
    policy.write_text(planned({**WEB, "names": ["web-1", "web1"]}, DB))
    assert main(["validate", "--online", "--policy", str(policy)], clock=clock) == 1
    err = capsys.readouterr().err
    assert "web: no server named 'web1'; did you mean 'web-1'" in err
    assert err.endswith("1 target(s) failed the online check.\n")


def test_a_target_naming_a_missing_server_still_snapshots_the_ones_that_exist(
    policy, sandbox, capsys, clock
):
    """names: [web-1, web-9]: web-1 gets its snapshot; the target fails for web-9 (exit 2)."""
    policy.write_text(planned({**WEB, "names": ["web-1", "web-9"]}, DB))
    assert main(["apply", "--policy", str(policy)], clock=clock) == 2
    out = capsys.readouterr().out
    assert "web: FAILED: no server named 'web-9'" in out
    assert any(
        s["name"].startswith("web-1-") and s["created"] == iso(clock.now)
        for s in sandbox.dump_state()["snapshots"]
    )


def test_validate_makes_no_api_call_without_online(policy, sandbox, capsys, clock):
    sandbox.clear_requests()
    assert main(["validate", str(policy)], clock=clock) == 0
    assert sandbox.requests() == []


def test_a_server_in_two_targets_fails_both(policy, sandbox, capsys, clock):
    policy.write_text(planned(WEB, DB, {"name": "db-again", "account": "hz", "names": ["db-1"]}))
    assert main(["plan", "--policy", str(policy)], clock=clock) == 1
    out = capsys.readouterr().out
    assert out.count("is selected by targets db and db-again") == 2


def orphans_in(capsys) -> dict:
    return next(
        t for t in json.loads(capsys.readouterr().out)["targets"] if t["target"] == "(orphans)"
    )


def test_orphans_are_kept_and_reported_or_pruned_once_their_absence_is_certain(
    policy, sandbox, capsys, clock
):
    state = sandbox.dump_state()
    marked = {"managed-by": "snapshot-policy", "snapshot-policy/server-id": "5000"}
    state["snapshots"] += [
        *daily("hz", 5000, "gone-1", clock.now, range(2, 6), server_name="gone-1", labels=marked),
        {
            "account": "hz",
            "server_id": 5000,
            "server_name": "gone-1",
            "name": "gone-1-manual",
            "created": iso(made(clock.now, 25)),
        },
    ]
    sandbox.load_state(state)
    assert main(["plan", "--policy", str(policy), "--output", "json"], clock=clock) == 0
    orphans = orphans_in(capsys)
    assert (orphans["server_id"], orphans["server_name"], orphans["create"]) == (
        "5000",
        "gone-1",
        None,
    )
    assert len(orphans["keep"]) == 4 and orphans["delete"] == []
    assert (
        orphans["schedule_note"]
        == "the server is missing from its account's listing; its snapshots are kept"
    )

    # Pruning is asked for, but one look at the listing proves nothing: the first apply keeps
    # them all and records when the server was first missed; a day later they are pruned.
    policy.write_text(planned(orphans={"keep_last": 1}, settings={"lock_file": "run/lock"}))
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    capsys.readouterr()
    assert {s["name"] for s in sandbox.dump_state()["snapshots"] if s["server_id"] == 5000} >= {
        legacy_name("gone-1", clock.now, d) for d in range(2, 6)
    }
    clock.advance(hours=23)
    assert main(["plan", "--policy", str(policy), "--output", "json"], clock=clock) == 0
    assert orphans_in(capsys)["delete"] == []
    clock.advance(hours=1)
    assert main(["plan", "--policy", str(policy), "--output", "json"], clock=clock) == 0
    orphans = orphans_in(capsys)
    assert [s["name"] for s in orphans["keep"]] == [
        legacy_name("gone-1", clock.now - timedelta(hours=24), 2)
    ]
    assert len(orphans["delete"]) == 3
    assert orphans["schedule_note"] == "the server no longer exists; its snapshots are only pruned"
    assert main(["plan", "--policy", str(policy), "--target", "db"], clock=clock) == 0
    assert "(orphans)" not in capsys.readouterr().out


def test_a_server_listing_empty_once_prunes_nothing(policy, sandbox, capsys, clock):
    """An API that answers 200 with no servers once: the targets fail, and their servers'
    snapshots are not taken for orphans, even with orphan pruning on and a day gone by."""
    state = sandbox.dump_state()
    for snapshot in state["snapshots"]:
        if snapshot["server_id"] == 4711 and not snapshot.get("protected"):
            snapshot["labels"] = {
                "managed-by": "snapshot-policy",
                "snapshot-policy/server-id": "4711",
            }
    sandbox.load_state(state)
    policy.write_text(planned(orphans={"keep_last": 1}, settings={"lock_file": "run/lock"}))
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    before = sandbox.dump_state()["snapshots"]
    clock.advance(hours=25)
    for _ in range(2):  # the second time a day after the first
        sandbox.inject(
            "patch",
            service="hetzner",
            method="GET",
            path="^/v1/servers$",
            patch={"servers": [], "meta": {"pagination": {"total_entries": 0, "last_page": 1}}},
        )
        assert main(["apply", "--policy", str(policy)], clock=clock) == 2
        assert "db: FAILED: no server with id 4711" in capsys.readouterr().out
        clock.advance(hours=25)
    db_before = {s["id"] for s in before if s["server_id"] == 4711}
    assert db_before <= {s["id"] for s in sandbox.dump_state()["snapshots"]}


def test_a_snapshot_listing_empty_once_makes_no_undue_snapshot(policy, sandbox, capsys, clock):
    """The tool's own record of what it made is a second source for the schedule."""
    policy.write_text(planned(settings={"lock_file": "run/lock"}))
    assert main(["apply", "--policy", str(policy), "--target", "db"], clock=clock) == 0
    made = len(sandbox.dump_state()["snapshots"])
    clock.advance(hours=2)
    sandbox.inject(
        "patch", service="hetzner", method="GET", path="^/v1/images$", patch={"images": []}
    )
    capsys.readouterr()
    # -v: a run with nothing due prints its result lines only when asked (issue 21, item 9).
    assert main(["apply", "--policy", str(policy), "--target", "db", "-v"], clock=clock) == 0
    assert len(sandbox.dump_state()["snapshots"]) == made
    assert "no new snapshot" in capsys.readouterr().out


def test_plan_out_creates_its_folder_and_reports_an_unwritable_path(
    policy, sandbox, tmp_path, capsys, clock
):
    assert (
        main(
            ["plan", "--policy", str(policy), "--out", str(tmp_path / "new" / "plan.json")],
            clock=clock,
        )
        == 0
    )
    assert (tmp_path / "new" / "plan.json").is_file()
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert (
        main(["plan", "--policy", str(policy), "--out", str(blocker / "plan.json")], clock=clock)
        == 1
    )
    assert (
        f"cannot use plan --out {blocker / 'plan.json'}: {blocker} is not a folder"
        in capsys.readouterr().err
    )


def test_plan_is_coloured_on_a_terminal_only_and_never_with_no_color(
    policy, sandbox, capsys, monkeypatch, clock
):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    assert main(["plan", "--policy", str(policy)], clock=clock) == 0
    piped = capsys.readouterr().out
    assert "\x1b[" not in piped and "+ create web-1-" in piped
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    assert main(["plan", "--policy", str(policy)], clock=clock) == 0
    coloured = capsys.readouterr().out
    assert "\x1b[32m" in coloured and re.sub(r"\x1b\[[0-9;]*m", "", coloured) == piped
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["plan", "--policy", str(policy)], clock=clock) == 0
    assert not re.search(r"\x1b\[(3\d|9\d)m", capsys.readouterr().out)


def test_hooks_from_the_policy_run_around_the_snapshot_and_their_output_is_logged_masked(
    policy, sandbox, tmp_path, capsys, clock
):
    """A real subprocess each: before records and prints the DigitalOcean token, which the log
    masks."""
    record = tmp_path / "hooks.txt"
    hooks = {
        "before": f'echo "before $SNAPSHOT_POLICY_SNAPSHOT" >> {record}; '
        "echo token is $TEST_DO_TOKEN",
        "after": f'echo "after $SNAPSHOT_POLICY_STATUS" >> {record}',
        "shell": True,
        "env": ["TEST_DO_TOKEN"],  # a token reaches a hook only when env names it
    }
    settings = {"lock_file": "run/lock", "log": {"file": "run/snapshot-policy.log"}}
    policy.write_text(planned({**WEB, "hooks": hooks}, DB, settings=settings))
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    lines = record.read_text().splitlines()
    assert lines[0].startswith("before web-1-") and lines[1] == "after success"
    log = (policy.parent / "run" / "snapshot-policy.log").read_text()
    assert "before hook: token is ***" in log and DO_TOKEN not in log


def test_a_hook_written_as_a_string_without_shell_is_a_config_error(policy, sandbox, capsys, clock):
    policy.write_text(planned({**WEB, "hooks": {"before": "pg_dump db"}}, DB))
    assert main(["validate", "--policy", str(policy)], clock=clock) == 1
    err = capsys.readouterr().err
    assert (
        "targets[0].hooks.before" in err
        and "write it as a list [program, argument, ...], or set shell: true" in err
    )


# -- storage and cost (issue 15, item 1) --------------------------------------------------------


def sized(
    sandbox,
    sizes: dict[str, float],
    creating: list[dict] = (),
    made: dict[int, float] | None = None,
) -> None:
    """Give the sandbox's snapshots their billed sizes, by name (others keep 2.5 GB), add
    Hetzner images still being created, and set the size of what each server makes (`made`)."""
    state = sandbox.dump_state()
    for snapshot in state["snapshots"]:
        snapshot["size_gigabytes"] = sizes.get(snapshot["name"], snapshot["size_gigabytes"])
    for server in state["servers"]:
        server["snapshot_size_gigabytes"] = (made or {}).get(server["id"], 2.5)
    state["snapshots"] += creating
    sandbox.load_state(state)


def test_plan_shows_storage_and_monthly_cost_per_target_and_in_total(
    policy, sandbox, capsys, clock
):
    """Sizes come through the real SDKs (DigitalOcean size_gigabytes, Hetzner image_size);
    prices from settings.prices, where set, else the documented defaults."""
    policy.write_text(planned(settings={"prices": {"hetzner": {"per_gb_month": 0.02}}}))
    sized(
        sandbox, {legacy_name("web-1", clock.now, 1): 4.0, legacy_name("db-1", clock.now, 1): 10.0}
    )
    assert main(["plan", "--policy", str(policy)], clock=clock) == 0
    text = capsys.readouterr().out
    assert max(len(line) for line in text.splitlines()) <= 80, text
    # web: 6 snapshots (five of snapshots.py's, not adopted here, one by hand) stay; one is added.
    assert (
        "  storage now: 6 snapshots, 16.5 GB, USD 0.99 a month\n"
        "  after apply: 7 snapshots, ~20.5 GB, ~USD 1.23 a month (new one ~4 GB)\n"
    ) in text
    # db: 5 adopted daily snapshots and a protected manual one; 3 go, a new one ~10 GB comes.
    assert (
        "  storage now: 6 snapshots, 22.5 GB, EUR 0.45 a month\n"
        "  after apply: 4 snapshots, ~25 GB, ~EUR 0.50 a month (new one ~10 GB)\n"
    ) in text
    assert (
        "Snapshot storage of all targets:\n"
        "  now:         12 snapshots, 39 GB, EUR 0.45 + USD 0.99 a month\n"
    ) in text
    assert "  at per GB-month prices of USD 0.06 (DigitalOcean), EUR 0.02 (Hetzner)\n" in text
    assert main(["plan", "--policy", str(policy), "--output", "json"], clock=clock) == 0
    document = json.loads(capsys.readouterr().out)
    db = next(t for t in document["targets"] if t["target"] == "db")
    assert db["create"]["estimated_size_gb"] == 10.0
    assert db["storage"]["after_apply"]["size_gb"] == 25.0 and db["storage"]["after_apply"][
        "monthly_cost"
    ] == {"EUR": 0.5}
    assert document["storage"]["prices"]["hetzner"] == {
        "per_gb_month": 0.02,
        "currency": "EUR",
        "source": "settings.prices",
    }
    assert document["storage"]["now"]["monthly_cost"] == {"EUR": 0.45, "USD": 0.99}


def test_an_image_being_created_has_no_size_yet_and_shows_as_unknown(
    policy, sandbox, capsys, clock
):
    """Hetzner's image_size is null while an image is made: never 0 GB in a total."""
    being_made = {
        "account": "hz",
        "server_id": 4711,
        "name": "db-1 by hand",
        "created": iso(clock.now - timedelta(minutes=5)),
        "status": "creating",
    }
    sized(sandbox, {}, [being_made])
    assert (
        main(["plan", "--policy", str(policy), "--target", "db", "--output", "json"], clock=clock)
        == 0
    )
    now = json.loads(capsys.readouterr().out)["targets"][0]["storage"]["now"]
    assert (
        now["snapshots"],
        now["unknown_sizes"],
        now["size_gb"],
        now["known_size_gb"],
        now["monthly_cost"],
    ) == (7, 1, None, 15.0, None)
    assert main(["plan", "--policy", str(policy), "--target", "db"], clock=clock) == 0
    assert (
        "  storage now: 7 snapshots (1 of unknown size), 15+ GB, EUR 0.21+ a month\n"
        in capsys.readouterr().out
    )


def test_the_estimate_of_the_new_snapshot_is_what_the_cloud_then_bills(
    policy, sandbox, capsys, clock
):
    """When each server's new snapshot is as large as its newest, as the plan estimates: after
    apply, the plan's `now` is what the first plan said `after apply` would be."""
    sized(
        sandbox,
        {legacy_name("web-1", clock.now, 1): 4.0, legacy_name("db-1", clock.now, 1): 10.0},
        made={3164444: 4.0, 4711: 10.0},
    )
    assert main(["plan", "--policy", str(policy), "--output", "json"], clock=clock) == 0
    expected = json.loads(capsys.readouterr().out)["storage"]["after_apply"]
    assert main(["apply", "--policy", str(policy)], clock=clock) == 0
    capsys.readouterr()
    assert main(["plan", "--policy", str(policy), "--output", "json"], clock=clock) == 0
    found = json.loads(capsys.readouterr().out)["storage"]["now"]
    assert (found["snapshots"], found["size_gb"], found["monthly_cost"]) == (
        expected["snapshots"],
        expected["size_gb"],
        expected["monthly_cost"],
    )
    assert expected["estimated"] is True and found["estimated"] is False


def test_apply_dry_run_shows_the_storage_lines_too(policy, sandbox, capsys, clock):
    assert main(["apply", "--policy", str(policy), "--dry-run"], clock=clock) == 0
    out = capsys.readouterr().out
    assert out.count("  storage now: ") == 2 and "Snapshot storage of all targets:" in out
