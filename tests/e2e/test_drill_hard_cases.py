"""Restore drills where the cloud or the run misbehaves (issue 22): a server locked by its
own actions, a journal that cannot be written after the create, a stop while the boot poll
reads, a listing that leaves a leftover out, garbled state files, a restore name no cloud
takes."""

from __future__ import annotations

from datetime import timezone

import pytest

from snapshot_policy.cli import main
from snapshot_policy.state.journal import Journal
from tests.e2e.cloud import unwrapped
from tests.e2e.test_drill_runs import (
    PUBLIC,
    drill,
    drill_servers,
    journal,
    state,
    write_policy,
)


@pytest.fixture
def booting(sandbox):
    sandbox.state.boot_seconds = 0.2
    return sandbox


def test_a_locked_server_is_deleted_in_this_run_once_its_lock_is_gone(
    booting,
    tokens,
    tmp_path,
    clock,
    capsys,
):
    """Hetzner answers 423 `locked` to a DELETE while an action runs on the server (its
    create and start, right after a boot timeout or a stop): a lock that lasts seconds,
    not a refusal. The drill server must not be left running until the next run."""
    booting.inject(
        "error", service="hetzner", method="DELETE", path=r"^/v1/servers/\d+$", status=423, count=1
    )
    policy = write_policy(tmp_path, PUBLIC)
    drill(policy, clock, "--target", "db")
    assert drill_servers(booting) == [], capsys.readouterr().out
    assert journal(tmp_path) == []


@pytest.mark.parametrize("method", ["drill_created", "drill_gone"])
def test_a_journal_write_that_fails_after_the_create_still_deletes_every_drill_server(
    booting,
    tokens,
    tmp_path,
    clock,
    capsys,
    monkeypatch,
    method,
):
    """The disk fills after the create was journaled: noting the server's id (or crossing
    it off) fails. Rule 4 of DESIGN22: a drill server is deleted always; the journal entry
    written before the create keeps its name for the next run if this one cannot say more.
    The drill must end with its server deleted, and the run must say
    what went wrong (no traceback)."""
    original = getattr(Journal, method)
    calls = []

    def full_disk(self, *args, **kwargs):
        calls.append(args)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Journal, method, full_disk)
    policy = write_policy(tmp_path, PUBLIC)
    code = drill(policy, clock, "--target", "db")
    out, err = capsys.readouterr()
    assert calls, (code, out, err)
    assert drill_servers(booting) == [], (code, out, err)
    assert "Traceback" not in out + err and code in (0, 2)


@pytest.mark.parametrize("target", ["web", "db"])
@pytest.mark.parametrize("name", ["bad name!"])
def test_restore_refuses_a_name_that_is_no_hostname_in_plain_words(
    booting,
    tokens,
    tmp_path,
    clock,
    capsys,
    target,
    name,
):
    policy = write_policy(tmp_path, PUBLIC)
    code = main(
        ["restore", "--policy", str(policy), "--target", target, "--name", name], clock=clock
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in out + err
    assert not [r for r in booting.requests() if r["method"] == "POST"], "refused before sending"


@pytest.mark.parametrize(
    "garbage",
    [
        "{not json",
        '{"last_drills": [["hz", "4711", "db", {"when": "yesterday", "passed": "yes"}]]}',
        '{"last_drills": [["hz", "4711", "db", {"when": "2030-01-01T00:00:00", "passed": true}]]}',
        '{"last_runs": [["hz", "4711", "db", {"when": "2030-01-01T00:00:00", "ok": true}]]}',
        '{"last_drills": 5, "last_runs": {"a": 1}}',
        '{"last_drills": [["hz", "4711", "db", {"when": "2030-04-20T00:00:00+00:00", '
        '"passed": "no", "snapshot_id": "1", "restore_seconds": "fast"}]]}',
    ],
)
def test_status_and_drill_with_a_garbled_run_state_say_so_without_a_traceback(
    booting,
    tokens,
    tmp_path,
    clock,
    capsys,
    garbage,
):
    policy = write_policy(tmp_path, PUBLIC)
    (tmp_path / "run").mkdir(exist_ok=True)
    state_file = tmp_path / "run" / "lock.state.json"
    state_file.write_text(garbage)
    state_file.chmod(0o600)
    code = main(["status", "--policy", str(policy)], clock=clock)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and code in (0, 1, 2), (code, out, err)
    code = main(["drill", "--policy", str(policy), "--target", "db"], clock=clock)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and code in (0, 1, 2), (code, out, err)
    assert drill_servers(booting) == []


@pytest.mark.parametrize(
    "entry",
    [
        {"drill": "db", "name": "drill-db-4711-x", "started": "2030-01-01T00:00:00"},  # no account
        {
            "account": "hz",
            "server_id": "4711",
            "name": "drill-db-4711-x",
            "drill": "db",
            "snapshot": "1",
            "drill_server": "",
            "started": "2030-01-01T00:00:00",  # naive
        },
        {
            "account": "hz",
            "server_id": "4711",
            "name": "drill-db-4711-x",
            "drill": "db",
            "snapshot": "1",
            "drill_server": "not-a-number",
            "started": "2030-01-01T00:00:00+00:00",
        },
        {  # DigitalOcean read the id as a number outside its guarded call: a traceback
            "account": "do",
            "server_id": "3164444",
            "name": "drill-web-3164444-x",
            "drill": "web",
            "snapshot": "1",
            "drill_server": "not-a-number",
            "started": "2020-01-01T00:00:00+00:00",
        },
        {  # an id edited to null was read as the id "None"
            "account": "do",
            "server_id": "3164444",
            "name": "drill-web-3164444-x",
            "drill": "web",
            "snapshot": "1",
            "drill_server": None,
            "started": "2020-01-01T00:00:00+00:00",
        },
    ],
)
def test_a_garbled_journal_drill_entry_breaks_neither_status_nor_apply(
    booting,
    tokens,
    tmp_path,
    clock,
    capsys,
    entry,
):
    import json

    policy = write_policy(tmp_path, PUBLIC)
    (tmp_path / "run").mkdir(exist_ok=True)
    path = tmp_path / "run" / "lock.journal.json"
    path.write_text(json.dumps([entry]))
    path.chmod(0o600)
    target = "web" if entry.get("account") == "do" else "db"
    for argv in (["status"], ["apply", "--target", target], ["drill", "--target", target]):
        code = main([*argv, "--policy", str(policy)], clock=clock)
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err and code in (0, 1, 2), (argv, code, out, err)


def test_a_stop_that_comes_while_the_listing_is_read_still_kills_the_probe(
    booting, tokens, tmp_path, clock, capsys, monkeypatch
):
    """SIGTERM arrives while the boot poll's listing is being read (a request of seconds on
    a real cloud). The listing shows the server running, so its probe is started; the
    stop's one `hooks.stop_all` comes before the probe's process exists, so nothing kills
    the probe: the run waits its whole probe_timeout before deleting the server (systemd's
    SIGKILL comes first, after 90 s by default)."""
    import time

    from snapshot_policy import config
    from snapshot_policy.edges.providers.hetzner import Hetzner
    from snapshot_policy.engine import run
    from snapshot_policy.engine.execute import Stop

    stop = Stop()
    listed = Hetzner.drill_servers

    def listing_during_which_the_signal_comes(self):
        servers = listed(self)
        if any(s.status == "running" for s in servers):
            stop.set("SIGTERM")
        return servers

    monkeypatch.setattr(Hetzner, "drill_servers", listing_during_which_the_signal_comes)
    policy = write_policy(tmp_path, {**PUBLIC, "probe": ["sleep", "20"], "probe_timeout": 20})
    loaded = config.load(policy, ["db"], ())
    context = run.RunContext.of(loaded)
    began = time.monotonic()
    run.drill(context, clock, stop=stop)
    assert time.monotonic() - began < 10, "the probe ran its whole timeout after the stop"
    assert drill_servers(booting) == []


def test_a_leftover_the_listing_leaves_out_once_is_not_crossed_off_while_it_exists(
    booting, tokens, tmp_path, clock, capsys, monkeypatch
):
    """A drill server left by a run (its DELETE refused) is missing from one listing of
    drill servers (a listing that lags, or DigitalOcean's tag filter under another
    capitalization of the tag): the journal entry, which names it by id, is crossed off
    on that absence alone, without the read by id the boot poll makes for the same doubt.
    The server then has our marks and no entry: reported forever, never deleted."""
    from snapshot_policy.edges.providers.hetzner import Hetzner

    booting.inject(
        "error", service="hetzner", method="DELETE", path=r"^/v1/servers/\d+$", status=403, count=1
    )
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock, "--target", "db") == 2
    (left,) = drill_servers(booting)
    listed = Hetzner.drill_servers
    monkeypatch.setattr(Hetzner, "drill_servers", lambda self: [])  # one listing lags
    clock.advance(hours=1)
    main(["apply", "--policy", str(policy), "--target", "db"], clock=clock)
    monkeypatch.setattr(Hetzner, "drill_servers", listed)
    clock.advance(hours=1)
    main(["apply", "--policy", str(policy), "--target", "db"], clock=clock)
    assert left.id not in [s.id for s in drill_servers(booting)], capsys.readouterr().err


def test_a_lost_create_never_takes_another_configurations_server_of_that_name(
    booting, tokens, tmp_path, clock, capsys
):
    """The create of a drill droplet fails without certainty (a 500: DigitalOcean made
    none), and another configuration has a drill droplet of exactly that name (DigitalOcean
    takes two of one name). The lookup after the lost reply must not take it for ours: our
    journal entry never names it, and it is not read for deletion, let alone deleted."""
    name = f"drill-web-3164444-{clock().astimezone(timezone.utc):%Y%m%d%H%M%S}"
    with booting.state.lock:
        other = booting.state.add_server(
            "do", name, tags=["snapshot-policy-drill", "snapshot-policy-owner-someone-else"]
        )
    booting.inject(
        "error", service="digitalocean", method="POST", path=r"^/v2/droplets$", status=500, count=1
    )
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock, "--target", "web") == 2
    assert f"no server named {name} is listed" in unwrapped(capsys.readouterr().out)
    assert [s.id for s in drill_servers(booting)] == [other.id]
    assert [(e["name"], e["drill_server"]) for e in journal(tmp_path)] == [(name, "")]
    assert not [
        r for r in booting.requests("digitalocean") if r["path"] == f"/v2/droplets/{other.id}"
    ]


def test_leftovers_the_drill_listing_cannot_show_fail_their_target_until_a_run_deletes_them(
    booting, tokens, tmp_path, clock, capsys, monkeypatch
):
    """A drill server an earlier run left (its DELETE refused) cannot be cleared while the
    listing of drill servers fails: apply says which, as a warning naming the account, and
    its target fails (exit 2), as when the delete itself fails; the journal keeps the entry
    and the next run, the listing back, deletes the server."""
    from snapshot_policy.core.model import ProviderError
    from snapshot_policy.edges.providers.hetzner import Hetzner

    booting.inject(
        "error", service="hetzner", method="DELETE", path=r"^/v1/servers/\d+$", status=403, count=1
    )
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock, "--target", "db") == 2
    (left,) = drill_servers(booting)
    listed = Hetzner.drill_servers

    def unlisted(self):
        raise ProviderError("hetzner", "list drill servers", 503, "service unavailable")

    monkeypatch.setattr(Hetzner, "drill_servers", unlisted)
    clock.advance(hours=1)
    capsys.readouterr()
    apply = ["apply", "--policy", str(policy), "--target", "db", "-v"]
    assert main(apply, clock=clock) == 2
    out, err = capsys.readouterr()
    assert "hz: could not list the drill servers" in err and f"{left.name}, left by" in err
    assert f"drill server {left.name} an earlier run left is not deleted" in unwrapped(out)
    assert [s.id for s in drill_servers(booting)] == [left.id]
    assert [e["name"] for e in journal(tmp_path)] == [left.name]
    monkeypatch.setattr(Hetzner, "drill_servers", listed)
    clock.advance(hours=1)
    assert main(apply, clock=clock) == 0
    assert drill_servers(booting) == [] and journal(tmp_path) == []


def test_a_drill_server_renamed_while_it_boots_is_never_deleted(
    booting, tokens, tmp_path, clock, capsys, monkeypatch
):
    """Someone renames a booting drill server to keep it. The boot poll lists it under its
    new name; the delete's last read must compare with the name the journal holds, not the
    one last listed: a renamed server is someone's now, reported and left, as a renamed
    leftover is (docs/promises.md §5)."""
    from snapshot_policy.edges.providers.hetzner import Hetzner

    listed = Hetzner.drill_servers

    def renamed_before_listing(self):
        with booting.state.lock:
            for server in booting.state.servers.values():
                if server.labels.get("snapshot-policy/drill") == "true":
                    server.name = "db-1-kept-for-debugging"
        return listed(self)

    monkeypatch.setattr(Hetzner, "drill_servers", renamed_before_listing)
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock, "--target", "db", "-v") == 2
    (kept,) = drill_servers(booting)
    assert kept.name == "db-1-kept-for-debugging"
    out, err = capsys.readouterr()
    assert "it is now named 'db-1-kept-for-debugging'" in unwrapped(out) + err
    assert not [
        r
        for r in booting.requests("hetzner")
        if r["method"] == "DELETE" and r["path"] == f"/v1/servers/{kept.id}"
    ]


def test_a_lost_create_whose_repeat_finds_the_name_taken_still_deletes_the_server(
    booting, tokens, tmp_path, clock, capsys, monkeypatch
):
    """Hetzner made the drill server but its reply was lost; the look by name misses it (a
    listing that lags) and the repeat is refused 409 uniqueness_error — by that very
    server. That refusal is no proof that no server exists: taken as one, the journal entry
    was crossed off and the server, with our marks and no entry, was never deleted."""
    from snapshot_policy.edges.providers.hetzner import Hetzner

    booting.inject("lose_reply", service="hetzner", method="POST", path="^/v1/servers$", count=1)
    looked, looks = Hetzner._made_named, []

    def lagging(self, request):  # the create's looks miss the server the lost POST made
        looks.append(request.name)
        return None if len(looks) <= 2 else looked(self, request)

    monkeypatch.setattr(Hetzner, "_made_named", lagging)
    policy = write_policy(tmp_path, PUBLIC)
    drill(policy, clock, "--target", "db")
    assert len(looks) == 2, "the lost POST, then the repeat's taken name"
    assert drill_servers(booting) == [], capsys.readouterr()
    assert journal(tmp_path) == []


def test_a_boot_is_followed_while_another_drills_probe_runs_even_if_timed_waits_never_end(
    booting, tokens, tmp_path, clock, capsys, monkeypatch
):
    """Under libfaketime (CI's moved-clock run) a thread's timed wait never runs out. The
    drill loop waited for its replies and probes with a timeout that was to wake it for the
    next boot poll: while one drill's probe ran, another's boot was not followed until that
    probe ended (its restore time, and its boot timeout, went by unseen). A timed wait with
    a positive timeout is made to never run out here, as it does there."""
    from concurrent import futures

    from tests.e2e.cloud import legacy_name

    def never_runs_out(waited, timeout=None, return_when=futures.ALL_COMPLETED):
        return futures.wait(waited, timeout=0 if timeout == 0 else None, return_when=return_when)

    monkeypatch.setattr("snapshot_policy.engine.drill.wait", never_runs_out)
    targets = []
    with booting.state.lock:
        for n, probe in ((0, ["sleep", "4"]), (1, ["true"])):
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
                    "drill": {"every": "7d", "public_network": True, "probe": probe},
                }
            )
    booting.inject("slow_boot", service="hetzner", name="^drill-app-1-", seconds=1.0, count=1)
    policy = write_policy(tmp_path, targets=targets, drills_per_account=2)
    assert drill(policy, clock) == 0, capsys.readouterr()
    records = {entry[2]: entry[3] for entry in state(tmp_path)["last_drills"]}
    assert records["app-1"]["restore_seconds"] < 3, records
    assert drill_servers(booting) == []


def test_a_fresh_leftover_the_listing_leaves_out_is_still_deleted_by_the_next_run(
    booting, tokens, tmp_path, clock, capsys, monkeypatch
):
    """A drill server left minutes ago (its DELETE refused; a run killed after its create is
    the same), its id in the journal, is missing from the next run's listing of drill
    servers (a listing that lags behind a create). The next run left it waiting for the
    margin meant for lost replies, known by name only: it outlived that run
    (docs/promises.md §5, invariant 14). Its id is asked instead."""
    from snapshot_policy.edges.providers.hetzner import Hetzner

    booting.inject(
        "error", service="hetzner", method="DELETE", path=r"^/v1/servers/\d+$", status=403, count=1
    )
    policy = write_policy(tmp_path, PUBLIC)
    assert drill(policy, clock, "--target", "db") == 2
    (left,) = drill_servers(booting)
    monkeypatch.setattr(Hetzner, "drill_servers", lambda self: [])  # the listing lags
    clock.advance(minutes=2)
    main(["apply", "--policy", str(policy), "--target", "db"], clock=clock)
    assert left.id not in [s.id for s in drill_servers(booting)], capsys.readouterr().err
    assert journal(tmp_path) == []


def test_drill_servers_that_cannot_be_deleted_hold_their_slots_so_no_more_are_made(
    booting, tokens, tmp_path, clock, capsys
):
    """The token may create servers but not delete them (a scope missing), or the cloud
    refuses every DELETE. Each drill left its server, freed its slot, and the next drill
    made another: five servers of five targets left running, not the `drills_per_account`
    (2) that may exist at once (docs/promises.md §10). A server not deleted keeps its slot;
    the drills that can then never start are not started, and say why."""
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
    booting.inject(
        "error",
        service="hetzner",
        method="DELETE",
        path=r"^/v1/servers/\d+$",
        status=403,
        count=None,
    )
    policy = write_policy(tmp_path, targets=targets, drills_per_account=2)
    assert drill(policy, clock, "-v") == 2
    out, err = capsys.readouterr()
    assert len(drill_servers(booting)) == 2, out
    assert "not started: 2 drill servers of account hz could not be deleted" in unwrapped(err)
    assert len(journal(tmp_path)) == 2  # the next run deletes them
    clock.advance(hours=1)  # and while it cannot, it makes none beside them
    assert drill(policy, clock, "-v") == 2
    assert len(drill_servers(booting)) == 2, capsys.readouterr().out
