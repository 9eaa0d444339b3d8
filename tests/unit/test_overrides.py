"""overrides: a server's own label or tag replaces one rule of its target (docs/promises.md §4.2);
and hcloud-snapshot-as-backup's snapshots adopted only where a target says so (§5)."""

from __future__ import annotations

import string
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from snapshot_policy.core.duration import Duration
from snapshot_policy.core.model import (
    DIGITALOCEAN,
    Account,
    CloudSnapshot,
    RetentionPolicy,
    Schedule,
    Selector,
    Server,
    TargetSpec,
)
from snapshot_policy.core.overrides import (
    RULE_KEYS,
    OverrideError,
    describe_rules,
    describe_schedule,
    overridden,
)
from snapshot_policy.core.ownership import AUTOBACKUP_ADOPTED, classify, made_by_autobackup
from snapshot_policy.core.resolve import resolve
from tests.factories import target, utc

HZ = replace(target(keep_last=3, keep_daily=7), server_name="web-1", server_id="4711")
DO = replace(HZ, provider=DIGITALOCEAN, server_id="3164444")
DURATIONS = set(RetentionPolicy.DURATION_RULES)


def label(key: str, value: str) -> dict[str, str]:
    return {f"snapshot-policy/{key}": value}


def tag(key: str, value: str) -> dict[str, str]:
    return {f"snapshot-policy:{key}:{value}": ""}


@pytest.mark.parametrize("rule", RULE_KEYS)
@pytest.mark.parametrize("cloud", ["hetzner", "digitalocean"])
def test_every_retention_key_is_overridden_on_both_clouds_and_says_where_from(rule, cloud):
    value, expected = ("30d", Duration(days=30)) if rule in DURATIONS else ("14", 14)
    written = rule.replace("_", "-")
    base, labels = (HZ, label(written, value)) if cloud == "hetzner" else (DO, tag(written, value))
    result = overridden(base, labels, "labels")
    assert getattr(result.retention, rule) == expected
    # the other rules stay: an override replaces that one key
    kept = {"keep_last": 3, "keep_daily": 7}
    for other, count in kept.items():
        if other != rule:
            assert getattr(result.retention, other) == count
    source = (
        f"label snapshot-policy/{written} on web-1"
        if cloud == "hetzner"
        else f"tag snapshot-policy:{written}:{value} on web-1"
    )
    assert result.rule_sources == {rule: source}
    assert f"{rule} {expected} ({source})" in describe_rules(result.retention, result.rule_sources)


def test_schedule_every_replaces_the_schedule_whole_even_a_cron():
    cron = replace(HZ, schedule=Schedule(cron="0 3 * * *"))
    result = overridden(cron, label("schedule-every", "12h"), "labels")
    assert result.schedule == Schedule(every=Duration(hours=12))
    assert describe_schedule(result.schedule, result.rule_sources) == (
        "every 12h (label snapshot-policy/schedule-every on web-1)"
    )
    assert overridden(DO, tag("schedule-every", "2d"), "labels").schedule.every == Duration(days=2)


def test_a_plan_without_overrides_describes_as_before():
    assert describe_rules(HZ.retention, {}) == HZ.retention.describe()
    assert describe_schedule(HZ.schedule, {}) == HZ.schedule.describe()
    assert overridden(HZ, {"env": "prod", "snapshot-policy/owner": "x"}, "labels") is HZ


def test_zero_turns_a_counted_rule_off_and_the_plan_says_so():
    result = overridden(HZ, label("keep-daily", "0"), "labels")
    assert result.retention == RetentionPolicy(keep_last=3)
    assert describe_rules(result.retention, result.rule_sources) == (
        "keep_last 3, keep_daily off (label snapshot-policy/keep-daily on web-1)"
    )


@pytest.mark.parametrize(
    ("labels", "words"),
    [
        (label("keep-last", "abc"), "'abc' is not a number of snapshots; write a whole number"),
        (label("keep-last", "-1"), "is not a number of snapshots"),
        (label("keep-last", "100001"), "from 0 to 100000"),
        (label("keep-last", "9" * 5000), "is not a number of snapshots"),
        (label("keep-last", "١٤"), "is not a number of snapshots"),  # digits, not ASCII
        (label("keep-within", "30"), "is not a duration"),
        (label("keep-within", "0d"), "zero duration"),
        (label("schedule-every", "1m"), "a schedule is counted in hours, days or weeks"),
        (label("schedule-cron", "0_3"), "a cron expression cannot be written in a label"),
        (label("keep-lst", "3"), "keep-lst is not a rule that can be overridden; did you mean"),
        (label("keep-last", ""), "has no value; write it as label snapshot-policy/keep-last=14"),
    ],
)
def test_a_bad_label_fails_the_server_naming_it_the_label_and_the_fix(labels, words):
    with pytest.raises(OverrideError) as raised:
        overridden(HZ, labels, "labels")
    message = str(raised.value)
    assert message.startswith("target web, server web-1 (4711): label snapshot-policy/")
    assert words in message


def test_a_bad_tag_fails_the_droplet_the_same_way():
    with pytest.raises(OverrideError, match=r"tag snapshot-policy:keep-daily:x: 'x' is not a"):
        overridden(DO, tag("keep-daily", "x"), "labels")
    with pytest.raises(OverrideError, match="has no value; write it as tag snapshot-policy:"):
        overridden(DO, {"snapshot-policy:keep-last": ""}, "labels")


def test_two_tags_that_disagree_fail_and_two_that_agree_do_not():
    with pytest.raises(OverrideError, match="gives keep_last another value; remove one"):
        overridden(DO, {**tag("keep-last", "14"), **tag("keep-last", "7")}, "labels")
    same = {**tag("keep-last", "14"), "SNAPSHOT-POLICY:KEEP-LAST:14": ""}
    assert overridden(DO, same, "labels").retention.keep_last == 14


def test_overrides_that_leave_no_rule_or_keep_verified_alone_are_refused():
    with pytest.raises(OverrideError, match="no retention rule is left"):
        overridden(HZ, {**label("keep-last", "0"), **label("keep-daily", "0")}, "labels")
    verified = {
        **label("keep-last", "0"),
        **label("keep-daily", "0"),
        **label("keep-verified", "2"),
    }
    with pytest.raises(OverrideError, match="only keep_verified is left"):
        overridden(HZ, verified, "labels")
    added = overridden(HZ, label("keep-verified", "2"), "labels")
    assert added.retention.keep_verified == 2


def test_off_reads_nothing_and_labels_reads_not_autobackups_label():
    labels = {**label("keep-last", "x"), "AUTOBACKUP.KEEP-LAST": "10"}
    assert overridden(HZ, labels, "off") is HZ
    assert overridden(HZ, {"AUTOBACKUP.KEEP-LAST": "10"}, "labels") is HZ


def test_autobackup_reads_keep_last_and_ours_too():
    result = overridden(HZ, {"AUTOBACKUP": "true", "AUTOBACKUP.KEEP-LAST": "10"}, "autobackup")
    assert result.retention == RetentionPolicy(keep_last=10, keep_daily=7)
    assert result.rule_sources == {
        "keep_last": "hcloud-snapshot-as-backup's label AUTOBACKUP.KEEP-LAST on web-1"
    }
    both = overridden(HZ, {"AUTOBACKUP.KEEP-LAST": "10", **label("keep-daily", "3")}, "autobackup")
    assert both.retention == RetentionPolicy(keep_last=10, keep_daily=3)


@pytest.mark.parametrize("value", ["0", "-2", "three", ""])
def test_autobackup_keep_last_below_one_or_not_a_number_fails_the_server(value):
    with pytest.raises(OverrideError, match=r"AUTOBACKUP.KEEP-LAST=.*whole number from 1"):
        overridden(HZ, {"AUTOBACKUP.KEEP-LAST": value}, "autobackup")


def test_autobackup_and_our_label_that_disagree_fail_and_that_agree_do_not():
    with pytest.raises(OverrideError, match="gives keep_last another value"):
        overridden(HZ, {"AUTOBACKUP.KEEP-LAST": "10", **label("keep-last", "5")}, "autobackup")
    agreed = overridden(HZ, {"AUTOBACKUP.KEEP-LAST": "5", **label("keep-last", "5")}, "autobackup")
    assert agreed.rule_sources["keep_last"] == "label snapshot-policy/keep-last on web-1"


@given(st.text(alphabet=string.printable, max_size=12))
def test_any_label_value_is_applied_or_refused_never_a_traceback(value):
    for key in ("keep-last", "keep-within-daily", "schedule-every", "keep-verified"):
        try:
            result = overridden(HZ, label(key, value), "labels")
        except OverrideError as error:
            assert "target web, server web-1 (4711)" in str(error)
        else:
            assert result.retention.has_rules


# -- where the overrides apply: resolve -------------------------------------------------------

ACCOUNT = Account("hz", "hetzner", "t0ken-hz")


def test_resolve_fails_the_badly_labelled_server_only_and_names_it():
    spec = TargetSpec(
        "fleet", ACCOUNT, Selector(label_selector="env=prod"), RetentionPolicy(keep_last=3)
    )
    good = Server("1", "web-1", labels={"env": "prod", **label("keep-last", "14")})
    plain = Server("2", "web-2", labels={"env": "prod"})
    bad = Server("3", "web-3", labels={"env": "prod", **label("keep-last", "lots")})
    targets, failures = resolve([spec], [good, plain, bad], {"env=prod": [good, plain, bad]})
    assert [(t.server_name, t.retention.keep_last) for t in targets] == [
        ("web-1", 14),
        ("web-2", 3),
    ]
    assert [(f.target, f.server_name) for f in failures] == [("fleet", "web-3")]
    assert "server web-3 (3): label snapshot-policy/keep-last=lots" in failures[0].reason
    off = replace(spec, server_overrides="off")
    targets, failures = resolve([off], [good, plain, bad], {"env=prod": [good, plain, bad]})
    assert [t.retention.keep_last for t in targets] == [3, 3, 3] and not failures
    assert {t.server_overrides for t in targets} == {"off"}


# -- hcloud-snapshot-as-backup's snapshots: adopted where, and only where, the target says ------

AUTO = replace(HZ, server_overrides="autobackup")
EPOCH = "1764558000"


def snapshot(name=f"web-1-{EPOCH}", server_id="4711", labels=None):
    labels = {"AUTOBACKUP": ""} if labels is None else labels
    return CloudSnapshot("9", name, utc(2025, 12, 1, 3), server_id, labels)


def test_autobackups_snapshots_of_the_server_are_adopted_with_autobackup():
    adopted = classify(AUTO, snapshot())
    assert adopted.managed and adopted.ownership == AUTOBACKUP_ADOPTED and not adopted.note
    assert adopted.ownership.startswith("adopted")


@pytest.mark.parametrize(
    ("base", "cloud"),
    [
        (HZ, snapshot()),  # the target does not say autobackup
        (replace(AUTO, server_overrides="off"), snapshot()),
        (AUTO, snapshot(labels={})),  # AUTOBACKUP removed: its operator chose to keep it
        (AUTO, snapshot(server_id="4712")),  # another server's
        (AUTO, snapshot(name=f"web-10-{EPOCH}")),  # a name that merely starts the same
        (AUTO, snapshot(name=f"xweb-1-{EPOCH}")),
        (AUTO, snapshot(name=f"web-1-{EPOCH}-copy")),
        (AUTO, snapshot(name="web-1-20251201030000")),  # snapshots.py's shape, not adopted here
        (AUTO, snapshot(name="web-1-before-upgrade")),
        (replace(AUTO, provider=DIGITALOCEAN), snapshot()),
    ],
)
def test_autobackup_adopts_nothing_else(base, cloud):
    assert not made_by_autobackup(base, cloud)
    assert not classify(base, cloud).managed


def test_one_whose_autobackup_label_was_removed_says_why_it_is_not_adopted():
    kept = classify(AUTO, snapshot(labels={}))
    assert not kept.managed
    assert kept.ownership.endswith(
        "named as hcloud-snapshot-as-backup names them, but without its AUTOBACKUP label "
        "(removed to keep it for good?): not adopted"
    )
    assert "hcloud" not in classify(HZ, snapshot(labels={})).ownership


def test_another_configurations_snapshot_is_never_adopted_as_autobackups():
    theirs = snapshot(labels={"AUTOBACKUP": "", "snapshot-policy/owner": "other"})
    assert not classify(replace(AUTO, owner="mine"), theirs).managed


@given(st.text(alphabet="web-1x0123456789", max_size=24))
def test_only_the_exact_name_is_adopted(name):
    exact = name.startswith("web-1-") and len(name) == 16 and name[6:].isdigit()
    assert made_by_autobackup(AUTO, snapshot(name=name)) is exact
