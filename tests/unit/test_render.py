"""The plan's text and JSON forms."""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import replace

from snapshot_policy.core.model import Price, TargetFailure
from snapshot_policy.core.reconcile import build_plan
from snapshot_policy.output import planfile, render
from tests.factories import snap, target, utc

PRICES = {"digitalocean": Price(0.06, "USD"), "hetzner": Price(0.0143, "EUR")}

GOLDEN_TEXT = """\
db: db-1 (digitalocean server 2, account main)
  schedule every run: no managed snapshot exists yet
  retention keep_last 2 (timezone UTC)
  + create db-1-20261126030000 (will be kept by: last)
  storage now: no snapshots
  after apply: 1 snapshot of unknown size

web: web (hetzner server 1, account main)
  schedule every run: a snapshot is made on every run
  retention keep_last 2 (timezone UTC)
  + create web-20261126030000 (will be kept by: last)
  = keep web-20261125030000 (id 11, 2026-11-25T03:00Z): kept by: last
  - delete web-20261124030000 (id 10, 2026-11-24T03:00Z)
      no retention rule keeps it
  ! skip web-20260201000000 (id 4, 2026-02-01T00:00Z)
      protected; no retention rule keeps it
  ! skip web-20260101000000 (id 3, 2026-01-01T00:00Z)
      unmanaged: no managed-by label
  storage now: 4 snapshots, 8.6 GB, EUR 0.12 a month
  after apply: 4 snapshots, ~8.7 GB, ~EUR 0.12 a month (new one ~2.4 GB)

The time in a + create name is this plan's.
Apply names the snapshot for the time it runs.

Snapshot storage of all targets:
  now:         4 snapshots, 8.6 GB, EUR 0.12 a month
  after apply: 5 snapshots (1 of unknown size), ~8.7+ GB, ~EUR 0.12+ a month
  (~ estimated: a new snapshot is counted as large as its server's newest)
  at per GB-month prices of USD 0.06 (DigitalOcean), EUR 0.0143 (Hetzner)

Plan: 2 to create, 1 to delete, 1 to keep, 2 skipped.
2 target(s) with 2 server(s).
"""


def sample_plan():
    history = [
        snap(utc(2026, 11, 25, 3), id="11", size_gb=2.4),
        snap(utc(2026, 11, 24, 3), id="10", size_gb=2.3),
        snap(utc(2026, 1, 1), id="3", managed=False, size_gb=1.9),
        snap(utc(2026, 2, 1), id="4", protected=True, size_gb=2.0),
    ]
    web = target(keep_last=2)
    db = replace(web, name="db", server_id="2", server_name="db-1", provider="digitalocean")
    return build_plan([(web, history), (db, [])], utc(2026, 11, 26, 3))


def test_plan_text_matches_the_documented_layout():
    assert render.plan_text(sample_plan(), prices=PRICES) == GOLDEN_TEXT


def test_plan_text_reports_a_refusal():
    history = [snap(utc(2026, 11, 23 + n)) for n in range(3)]
    plan = build_plan([(target(keep_last=1, max_deletions=1), history)], utc(2026, 11, 26))
    text = render.plan_text(plan)
    assert "  ! refused: 3 deletions exceed max_deletions 1" in text
    assert text.endswith(
        " 1 server(s) refused by safety limits.\n"
    )  # a sentence that would pass 80 columns starts a line
    assert max(len(line) for line in text.splitlines()) <= 80


def test_plan_json_has_the_documented_keys():
    document = json.loads(planfile.plan_json(sample_plan()))
    assert document["format_version"] == 1
    assert document["made_at"] == "2026-11-26T03:00:00Z"
    assert document["fingerprint"].startswith("sha256:")
    web = document["targets"][1]
    assert set(web) >= {
        "target",
        "provider",
        "server_id",
        "create",
        "delete",
        "keep",
        "skip",
        "refused",
        "storage",
    }
    assert web["create"] == {
        "name": "web-20261126030000",
        "name_at_apply": "web-{timestamp}",
        "rules": ["last"],
        "estimated_size_gb": 2.4,
    }
    assert web["delete"] == [
        {
            "id": "10",
            "name": "web-20261124030000",
            "created": "2026-11-24T03:00:00Z",
            "protected": False,
            "adopted": False,
            "ownership": "managed-by label",
            "size_gb": 2.3,
            "reason": "no retention rule keeps it",
        }
    ]
    assert web["keep"][0]["rules"] == ["last"]
    assert [s["id"] for s in web["skip"]] == ["4", "3"]
    assert document["summary"] == {
        "targets": 2,
        "create": 2,
        "delete": 1,
        "keep": 1,
        "skip": 2,
        "refused_targets": 0,
        "failed_targets": 0,
        "has_changes": True,
    }


def test_plan_json_is_deterministic():
    """The JSON form is a stable document for scripts and reviews: the same cloud, listed in any
    order, gives the same bytes, with targets by name and snapshots newest first, ties by id."""
    history = [
        snap(utc(2026, 11, 25, 3), id="14"),
        snap(utc(2026, 11, 24, 3), id="13"),
        snap(utc(2026, 11, 23, 3), id="12"),
        snap(utc(2026, 11, 22, 3), id="11"),
        snap(utc(2026, 2, 1), id="5", protected=True),
        snap(utc(2026, 1, 1), id="4", managed=False),
        snap(utc(2026, 1, 1), id="3", managed=False),
    ]
    web = target(keep_last=3)
    db = replace(web, name="db", server_id="2", server_name="db-1", provider="digitalocean")
    cache = replace(web, name="cache", server_id="3", server_name="cache-1")
    listings = [history, history[::-1], random.Random(7).sample(history, len(history))]
    renders = {
        planfile.plan_json(
            build_plan([(t, listing if t is web else []) for t in targets], utc(2026, 11, 26, 3))
        )
        for targets in itertools.permutations([web, db, cache])
        for listing in listings
    }
    assert len(renders) == 1
    document = json.loads(renders.pop())
    assert [t["target"] for t in document["targets"]] == ["cache", "db", "web"]
    entry = document["targets"][2]
    assert [s["id"] for s in entry["keep"]] == ["14", "13"]
    assert [s["id"] for s in entry["delete"]] == ["12", "11"]
    assert [s["id"] for s in entry["skip"]] == ["5", "4", "3"]


def test_plan_text_escapes_control_characters_in_names_from_the_cloud():
    """A snapshot named with a line break must not print a line that looks like a decision."""
    forged = replace(
        snap(utc(2026, 11, 25, 3), id="7", managed=False),
        name="x\n  - delete web-20261125030000 (id 1)",
    )
    text = render.plan_text(build_plan([(target(keep_last=3), [forged])], utc(2026, 11, 26, 3)))
    assert "\n  - delete" not in text and "x\\n  - delete web-20261125030000" in text


# -- the JSON text, written sooner (issue 13, item 5) ------------------------------------------


def test_plan_json_is_the_plan_document_indented_by_two():
    plan = sample_plan()
    failures = [TargetFailure("gone", "no server with id 9", "main")]
    document = planfile.plan_document(plan, failures)
    assert planfile.plan_json(plan, failures) == json.dumps(document, indent=2) + "\n"


def test_plan_text_lines_fit_80_columns_and_say_adopted_and_protected():
    """Real names and ids: every line within 80 columns; a snapshot adopted from snapshots.py's
    naming says so; a protected snapshot that is not ours reads as protected."""
    legacy = replace(
        snap(utc(2026, 11, 25, 3), id="100000011", managed=True),
        name="web-server-1-20261125030000",
        ownership="adopted: named exactly as '{server_name}-{timestamp}' names them "
        "(as snapshots.py did)",
    )
    pinned = replace(
        snap(utc(2026, 1, 1), id="100000003", managed=False),
        name="before-the-big-upgrade",
        protected=True,
        ownership="no managed-by label",
    )
    doomed = [
        replace(
            snap(utc(2026, 11, 20 - n, 3), id=f"10000002{n}"),
            name=f"web-server-1-202611{20 - n}030000",
        )
        for n in range(3)
    ]
    plan = build_plan([(target(keep_last=2), [legacy, pinned, *doomed])], utc(2026, 11, 26))
    text = render.plan_text(plan)
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert "= keep web-server-1-20261125030000 (id 100000011, 2026-11-25T03:00Z, adopted)" in text
    assert (
        "! skip before-the-big-upgrade (id 100000003, 2026-01-01T00:00Z)\n"
        "      protected, and not this tool's"
    ) in text
    document = json.loads(planfile.plan_json(plan))["targets"][0]
    assert document["keep"][0]["adopted"] is True and document["skip"][0]["protected"] is True


def test_styled_plan_colours_each_kind_of_line():
    text = render.plan_text(sample_plan())
    styled = render.styled(text)
    assert styled.plain == text
    styles = {str(span.style) for span in styled.spans}
    assert {"green", "red", "yellow", "dim"} <= styles


# -- storage and cost (issue 15, item 1) --------------------------------------------------------


def storage_lines(text: str) -> list[str]:
    return [
        line
        for line in text.splitlines()
        if line.startswith(("  storage now:", "  after apply:", "  now:"))
    ]


def test_plan_json_carries_the_storage_numbers_of_each_target_and_in_total():
    document = json.loads(planfile.plan_json(sample_plan(), prices=PRICES))
    db, web = document["targets"]
    assert web["storage"] == {
        "now": {
            "snapshots": 4,
            "unknown_sizes": 0,
            "size_gb": 8.6,
            "known_size_gb": 8.6,
            "monthly_cost": {"EUR": 0.123},
            "known_monthly_cost": {"EUR": 0.123},
            "estimated": False,
        },
        "after_apply": {
            "snapshots": 4,
            "unknown_sizes": 0,
            "size_gb": 8.7,
            "known_size_gb": 8.7,
            "monthly_cost": {"EUR": 0.1244},
            "known_monthly_cost": {"EUR": 0.1244},
            "estimated": True,
        },
    }
    assert db["create"]["estimated_size_gb"] is None  # no snapshot of db-1 to estimate it from
    assert db["storage"]["after_apply"] == {
        "snapshots": 1,
        "unknown_sizes": 1,
        "size_gb": None,
        "known_size_gb": 0.0,
        "monthly_cost": None,
        "known_monthly_cost": {},
        "estimated": False,
    }
    total = document["storage"]
    assert total["prices"] == {
        "digitalocean": {"per_gb_month": 0.06, "currency": "USD"},
        "hetzner": {"per_gb_month": 0.0143, "currency": "EUR"},
    }
    assert (total["now"]["snapshots"], total["now"]["size_gb"]) == (4, 8.6)
    assert (
        total["after_apply"]["snapshots"],
        total["after_apply"]["size_gb"],
        total["after_apply"]["known_size_gb"],
    ) == (5, None, 8.7)
    assert total["after_apply"]["monthly_cost"] is None and total["after_apply"][
        "known_monthly_cost"
    ] == {"EUR": 0.1244}
    assert [s["size_gb"] for s in web["skip"]] == [2.0, 1.9]


def test_plan_storage_shows_an_unknown_size_as_unknown_never_as_zero():
    """Hetzner gives no image_size while an image is being created: the total says so."""
    history = [
        snap(utc(2026, 11, 25, 3), id="11", size_gb=2.5),
        snap(utc(2026, 11, 26, 2), id="12", creating=True),
    ]
    plan = build_plan([(target(keep_last=5), history)], utc(2026, 11, 26, 3))
    assert storage_lines(render.plan_text(plan, prices=PRICES))[:2] == [
        "  storage now: 2 snapshots (1 of unknown size), 2.5+ GB, EUR 0.04+ a month",
        "  after apply: unchanged",
    ]
    document = json.loads(planfile.plan_json(plan, prices=PRICES))["targets"][0]["storage"]["now"]
    assert (
        document["size_gb"],
        document["known_size_gb"],
        document["unknown_sizes"],
        document["monthly_cost"],
    ) == (None, 2.5, 1, None)


def test_plan_storage_of_snapshots_all_of_unknown_size_shows_no_number():
    plan = build_plan([(target(keep_last=5), [snap(utc(2026, 11, 25, 3))])], utc(2026, 11, 26, 3))
    assert storage_lines(render.plan_text(plan, prices=PRICES))[:2] == [
        "  storage now: 1 snapshot of unknown size",
        "  after apply: 2 snapshots of unknown size",
    ]


def test_plan_storage_estimates_the_new_snapshot_as_the_newest_of_known_size():
    """Deleted and unmanaged snapshots of the server count for the estimate: the new one is of
    the same disk. A newer one of unknown size (still being made) does not."""
    history = [
        snap(utc(2026, 11, 25, 3), id="20", size_gb=4.0, managed=False),
        snap(utc(2026, 11, 24, 3), id="19", size_gb=3.0),
        snap(utc(2026, 11, 23, 3), id="18", size_gb=2.0),
    ]
    plan = build_plan([(target(keep_last=1), history)], utc(2026, 11, 26, 3))
    assert storage_lines(render.plan_text(plan, prices=PRICES))[:2] == [
        "  storage now: 3 snapshots, 9 GB, EUR 0.13 a month",
        "  after apply: 2 snapshots, ~8 GB, ~EUR 0.11 a month (new one ~4 GB)",
    ]


def test_plan_storage_adds_up_each_currency_and_leaves_out_a_provider_without_a_price():
    web = [snap(utc(2026, 11, 25, 3), id="11", size_gb=10.0)]
    db = [snap(utc(2026, 11, 25, 3), id="21", server_id="2", size_gb=100.0)]
    hetzner = target(keep_last=5)
    digitalocean = replace(
        hetzner, name="db", server_id="2", server_name="db-1", provider="digitalocean"
    )
    plan = build_plan([(hetzner, web), (digitalocean, db)], utc(2026, 11, 25, 4))
    text = render.plan_text(plan, prices=PRICES)
    assert "  now:         2 snapshots, 110 GB, EUR 0.14 + USD 6.00 a month" in text
    unpriced = render.plan_text(plan, prices={"hetzner": PRICES["hetzner"]})
    assert "  now:         2 snapshots, 110 GB, EUR 0.14 a month" in unpriced
    assert "  at per GB-month prices of EUR 0.0143 (Hetzner)" in unpriced
    assert "  storage now: 1 snapshot, 100 GB\n" in unpriced


def test_plan_storage_lines_fit_80_columns_with_large_numbers():
    history = [
        snap(utc(2026, 11, 25 - n, 3), id=str(100000000 + n), size_gb=1234.56 + n)
        for n in range(20)
    ]
    history.append(snap(utc(2026, 10, 1, 3), id="200000000", managed=False))
    plan = build_plan([(target(keep_last=3, max_deletions=100), history)], utc(2026, 11, 26, 3))
    text = render.plan_text(plan, prices={"hetzner": Price(123.4567, "EUR")})
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert (
        "  after apply: 4 snapshots (1 of unknown size), ~3704.68+ GB, ~EUR 457367.57+ a\n"
        "      month (new one ~1234.56 GB)\n"
    ) in text


def test_plan_text_shows_each_targets_hooks_and_why_its_deletions_are_withheld():
    """A saved plan is reviewed as text: the commands it will run are part of what it does
    (issue 19), and a target whose deletions wait says why."""
    from snapshot_policy.core.model import Hooks

    hooked = replace(
        target(keep_last=1),
        hooks=Hooks(before=("fsfreeze", "--freeze", "/var lib"), after=("fsfreeze", "-u", "/")),
    )
    shelled = replace(
        target(keep_last=1),
        name="db",
        server_id="2",
        hooks=Hooks(before="pg_ctl stop && sync", timeout=30, shell=True),
    )
    observed = [(hooked, [snap(utc(2026, 11, 20), id="old")]), (shelled, [])]
    plan = build_plan(
        observed, utc(2026, 11, 26, 3), withheld={"main": "deletions withheld: the listing changed"}
    )
    text = render.plan_text(plan)
    assert (
        "  hooks: before fsfreeze --freeze '/var lib'; after fsfreeze -u / (timeout 300s)" in text
    )
    assert "  hooks: before 'pg_ctl stop && sync' (timeout 30s, shell)" in text
    assert "  ! deletions withheld: the listing changed" in text
    assert text.rstrip().endswith("2 server(s) with deletions withheld.")
    targets = planfile.plan_document(plan)["targets"]
    assert [t["withheld"] for t in targets] == ["deletions withheld: the listing changed"] * 2


def test_plan_notes_a_managed_snapshot_the_tool_would_not_have_named():
    """A snapshot someone marked with our labels by hand is ours by its marker, but the plan
    says its name does not fit, before apply deletes it (issue 19)."""
    odd = replace(
        snap(utc(2026, 11, 20), id="golden"),
        name="golden-image",
        note="its name does not fit '{server_name}-{timestamp}' for this server",
    )
    plan = build_plan([(target(keep_last=1), [odd])], utc(2026, 11, 26, 3))
    text = render.plan_text(plan)
    assert "  - delete golden-image (id golden, 2026-11-20T00:00Z)" in text
    assert "      note: its name does not fit '{server_name}-{timestamp}' for this server" in text
    [deleted] = planfile.plan_document(plan)["targets"][0]["delete"]
    assert deleted["note"].startswith("its name does not fit")


# -- restore drills (issue 22) -----------------------------------------------------------


def drill_plan():
    """web (Hetzner) due with a machine, db (DigitalOcean) not due, api refused."""
    from snapshot_policy.core import drills
    from snapshot_policy.core.duration import Duration
    from snapshot_policy.core.model import CloudSnapshot, Drill, DrillMark, MachineType

    weekly = Drill(every=Duration(days=7))
    newest = snap(utc(2026, 11, 25, 3), id="11", size_gb=2.4)
    newest = replace(
        newest,
        cloud=CloudSnapshot("11", newest.name, newest.created, "1", {}, min_disk_gb=20),
    )
    web = replace(target(keep_last=2), drill=weekly)
    db = replace(web, name="db", server_id="2", server_name="db-1", provider="digitalocean")
    api = replace(web, name="api", server_id="3", server_name="api-1")
    marked = replace(
        snap(utc(2026, 11, 25, 3), id="21", server_id="2"),
        drilled=DrillMark(True, utc(2026, 11, 24).date()),
    )
    observed = [(web, [newest]), (db, [marked]), (api, [])]
    plan = build_plan(observed, utc(2026, 11, 26, 3))
    cx22 = MachineType("cx22", 40, ("fsn1",), 0.0072, "EUR")
    made = drills.plan_drills(observed, {"main": [cx22]}, {}, utc(2026, 11, 26, 3))
    return replace(plan, drills=made)


def test_the_plan_shows_one_drill_line_per_target_with_a_drill():
    text = render.plan_text(drill_plan(), prices=PRICES)
    assert max(map(len, text.splitlines())) <= render.WIDTH
    unwrapped = text.replace("\n      ", " ")
    lines = [line for line in unwrapped.splitlines() if line.startswith("  drill ")]
    assert lines == [
        "  drill every 7d: due, but refused: no managed snapshot to restore yet",
        "  drill every 7d: not due: last drill 2026-11-24 (passed)",
        "  drill every 7d: due \N{EM DASH} about EUR 0.0072 to restore web-20261125030000 "
        "to cx22 in fsn1",
    ]
    web_block = text.split("\n\n")[2]
    assert web_block.splitlines()[3].startswith("  drill every 7d: due")


def test_a_plan_without_drills_has_no_drill_line():
    assert "drill" not in render.plan_text(sample_plan(), prices=PRICES)


def test_drills_text_stands_alone_for_a_dry_run_of_drills():
    text = render.drills_text(drill_plan().drills)
    assert text.splitlines()[:2] == [
        "api: api-1 (hetzner server 3, account main)",
        "  drill every 7d: due, but refused: no managed snapshot to restore yet",
    ]


def test_the_plan_json_lists_the_drills():
    document = json.loads(planfile.plan_json(drill_plan(), prices=PRICES))
    api, db, web = document["drills"]
    assert web == {
        "target": "web",
        "provider": "hetzner",
        "account": "main",
        "server_id": "1",
        "server_name": "web",
        "every": "7d",
        "due": True,
        "note": "never drilled",
        "refused": None,
        "snapshot": {"id": "11", "name": "web-20261125030000", "created": "2026-11-25T03:00:00Z"},
        "machine_type": "cx22",
        "region": "fsn1",
        "drill_server_name": "drill-web-1-20261126030000",
        "cost": 0.0072,
        "currency": "EUR",
    }
    assert (db["due"], db["note"], db["snapshot"], db["cost"]) == (
        False,
        "not due: last drill 2026-11-24 (passed)",
        None,
        None,
    )
    assert (api["due"], api["refused"]) == (
        True,
        "no managed snapshot to restore yet",
    )
    assert json.loads(planfile.plan_json(sample_plan()))["drills"] == []


# -- restore drills at the end of a run (issue 22, item 2) -------------------------------


def drill_result(**change):
    """web-1's drill that passed: restored in 4.2s to drill server 901, probed, deleted."""
    from snapshot_policy.core.duration import Duration
    from snapshot_policy.core.model import Drill, DrillResult

    probed = Drill(every=Duration(days=7), probe=("true",))
    web = replace(target(keep_last=2), server_id="3164444", server_name="web-1", drill=probed)
    web = replace(web, provider="digitalocean")
    result = DrillResult(
        target=web,
        snapshot=snap(utc(2026, 11, 25, 3), id="11"),
        passed=True,
        stage="done",
        started=utc(2026, 11, 26, 3),
        finished=utc(2026, 11, 26, 3, 1),
        server_id="901",
        server_name="drill-web-3164444-20261126030000",
        restore_seconds=4.2,
        deleted=True,
        machine_type="s-1vcpu-1gb",
        region="nyc3",
    )
    return replace(result, **change)


def run_report(*results, outcomes=()):
    from snapshot_policy.core.model import RunReport

    return RunReport(utc(2026, 11, 26, 3), utc(2026, 11, 26, 3, 2), outcomes, drills=results)


def test_a_drill_result_says_where_it_restored_how_long_it_took_and_that_its_server_is_gone():
    assert render.drill_result_line(drill_result()) == (
        "web: web-1 (digitalocean server 3164444): drill of web-20261125030000 passed, "
        "restored in 4.2s to drill-web-3164444-20261126030000 (id 901, s-1vcpu-1gb in nyc3), "
        "probe passed; its server is deleted"
    )


def test_a_failed_drill_says_where_it_failed_and_whether_its_server_is_left():
    probe = drill_result(passed=False, stage="probe", error="the probe failed (exit status 3)")
    assert render.drill_result_line(probe).endswith(
        "drill of web-20261125030000 FAILED at probe, restored in 4.2s to "
        "drill-web-3164444-20261126030000 (id 901, s-1vcpu-1gb in nyc3): the probe failed "
        "(exit status 3); its server is deleted"
    )
    refused = drill_result(
        passed=False, stage="create", server_id=None, restore_seconds=None, error="no capacity"
    )
    assert render.drill_result_line(refused).endswith(
        "drill of web-20261125030000 FAILED at create: no capacity"
    )  # no server was made: none to speak of
    never_ran = drill_result(passed=False, stage="boot", restore_seconds=None, error="timeout")
    assert (
        ", server drill-web-3164444-20261126030000 (id 901, s-1vcpu-1gb in nyc3) never ran: "
        in (render.drill_result_line(never_ran))
    )
    left = drill_result(deleted=False)
    assert render.drill_result_line(left).endswith(
        "probe passed; its server is NOT deleted yet (the next run deletes it)"
    )
    unprobed = replace(
        drill_result().target, drill=replace(drill_result().target.drill, probe=None)
    )
    assert "probe" not in render.drill_result_line(drill_result(target=unprobed))


def test_apply_ends_with_a_line_per_drill_and_counts_them_in_its_summary():
    failed = drill_result(
        target=replace(drill_result().target, name="db", server_name="db-1", server_id="42"),
        passed=False,
        stage="probe",
        error="the probe failed",
    )
    report = run_report(drill_result(), failed)
    text = render.report_text(report)
    assert max(map(len, text.splitlines())) <= render.WIDTH
    lines = text.replace("\n    ", " ").splitlines()
    assert lines == [render.drill_result_line(drill_result()), render.drill_result_line(failed)]
    assert render.report_text(report, failed_only=True).replace("\n    ", " ") == lines[1] + "\n"
    assert render.report_summary(report) == (
        "snapshot-policy apply: 0 target(s), 0 server(s), 0 created, 0 deleted, 0 failed "
        "in 120.0s; 2 drill(s): 1 passed, 1 failed (db)"
    )
    left = run_report(drill_result(deleted=False))
    assert render.report_summary(left).endswith(
        "; 1 drill(s): 0 passed, 1 failed (web), 1 server(s) left for the next run to delete"
    )  # a server left behind needs someone, as the exit code says
    assert "drill" not in render.report_summary(run_report())


def test_a_run_whose_only_news_is_a_drill_is_not_uneventful():
    assert render.uneventful(run_report())
    passed = run_report(drill_result())
    assert passed.exit_code == 0 and not render.uneventful(passed)
    assert not render.report_failed(passed)
    assert render.report_failed(run_report(drill_result(passed=False, stage="boot")))
