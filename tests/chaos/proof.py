"""The proof of issue 19: a stateful property test of apply against the sandbox (`Proof`).

Two configurations (owners `alpha` and `beta`, each with its own folder: journal, run state,
audit log) cover the same DigitalOcean and Hetzner servers with different schedules and
retention, and run alternately, each in the same second as the other. Among
their runs hypothesis interleaves:

- listings that shift between pages: the sandbox's `shift` fault inserts unmarked snapshots
  (or servers) and deletes some near the page boundary once page N of a snapshot or server
  listing was served, once, twice or on every read. The accounts hold more than a page of
  each (DigitalOcean's pages are 200, Hetzner's 50), and before a shift other people may add
  and delete snapshots of another server so that one of a target's newest marked snapshots
  ends page 1: a shift then pushes it onto page 2 as well, or pulls another past the reader;
- a stop: `execute.Stop` set from another thread, as the CLI's SIGTERM handler sets it;
- a kill. A thread cannot be killed, so a kill is what the process would have left behind:
  from that moment no request reaches the clouds (every one is dropped), hook commands do
  nothing and record nothing (their script sees a `dead` file), and after the run the
  journal, run state and audit log are put back as they were at that moment (a consistent
  cut of the three files). Hook commands started before it run on, as they would outlive a
  killed CLI. The next run starts from what the kill left;
- either of them at a moment tied to what the run does (`Interrupter`): its start, its
  first snapshot POST or DELETE (with no delay: after the cloud carried it out and before
  the reply leaves, `TappedSandbox`), its first before or after hook, its first deletion
  audited; then 0 to 300 ms later;
- the simulated clock (the sandbox's and the planner's) moving forward by hours or days
  (also before most runs), and back by a few hours;
- snapshots made by hand: unmarked (some named exactly as the tool names them), and marked
  with our marker by hand with a name the tool would not make (alpha's, beta's, or no owner);
  a managed Hetzner snapshot protected by hand;
- hooks (before and after, around the DigitalOcean targets and alpha's Hetzner one) that
  succeed, fail, or hang past their 1-second timeout; each records its invocation in the
  folder's `hooks.log` (the folder comes in the hook's argv: hooks get a minimal environment);
- restore drills (issue 22): alpha's `web` and `app` and beta's `db-b` drill daily, a short
  boot in the sandbox and a probe that passes, fails or hangs past its timeout (probe.mode).
  Runs are apply (leftovers first, due drills after the snapshots, as `run.apply`) and the
  `drill` command (every drill now); their drills meet lost create replies (the server made),
  boot failures, boots past the boot timeout and DELETEs answered 500, and stops or kills
  after a create was carried out and before its reply leaves, during the boot, during the
  probe, after a DELETE was carried out. Servers made by hand look like drill servers: the
  drill mark without an owner, with another owner's, with ours but no journal entry, and a
  drill server a killed run left, renamed by hand.

After every run (`check_deletions`): no deletion of a hand-made unmarked snapshot, a
protected one or another configuration's; and none that a plan of the deleting
configuration would not make from a consistent view of the cloud. That plan is made by the
same code, with the journal and run state the run began with, against a second sandbox
loaded with the cloud as it was when the run began. During a run the cloud changes only by
shifts (which add unmarked snapshots and remove some) and by the run itself; with the
retention rules used here (counts and periods, no keep_within), a view with a snapshot
fewer never deletes more (the planned snapshot takes its place), so the view at the start
deletes the most of all views of one moment during the run. A listing that shifted while
it was read showed the tool something in between; what the tool deleted must still be what
a view of one moment deletes.

After every step: no two snapshots started for one server by one configuration in one
schedule slot (`Slots`); every deletion audited exactly once (`check_audit`); every `after`
run once for every `before`, by the end of the next completed run (`Hooks`); no snapshot
marked with two owners (`one_owner_a_snapshot`). And of servers (`DrillServers`, from every
create and DELETE the sandbox carried out, replies lost or not): every server deleted was a
drill server the deleting configuration made, carrying its marks, named in its journal at
that moment; none made by hand is ever deleted; after a run neither stopped nor killed, no
drill server an earlier run of its configuration made still exists (one a killed run left
is gone after the next completed run); every drill server deletion is audited once.

Issue 23 (docs/promises.md §5.15 to 5.18, and the per-server overrides of §4.2) adds:

- copies: alpha's `web` copies each snapshot to COPY_REGION (DigitalOcean image transfers),
  some transfers fail (the sandbox's `transfer_fail`), runs are stopped or killed after a
  transfer began and while it runs. At every DELETE of an image of such a droplet (in the
  sandbox, before it is carried out) the newest finished snapshot of that droplet the
  configuration manages must be in every region (`TappedSandbox._check_copies`);
- pins and soft delete: beta deletes softly (`settings.soft_delete`, GRACE_DAYS); seeded
  snapshots carry a pin, a due pending-delete mark, and marks whose day cannot be read;
  `pin ID --until DATE`, `unpin ID` and `undelete ID` run through the CLI (DATE from the
  proof's clock, in the target's timezone) on snapshots the configuration manages, and
  pin and pending marks that cannot be read are put on by hand; runs are stopped or killed
  after a label or tag write was carried out. After every run (`_check_marks`): no deletion
  of a snapshot whose pin held at the run's time in its target's timezone (one that cannot
  be read holds); under soft delete every deletion had a pending-delete mark whose day had
  come; marks change only on this configuration's snapshots (never a hand-made one or
  another's), a pending mark only under soft delete and never on a pinned snapshot, each
  audited unless the run was killed; and every command changes its snapshot's marks only
  and audits what it did. MARK_PENDING and UNMARK_PENDING are no deletions: the consistent
  plan of `check_deletions` deletes only what it says DELETE;
- volumes: a volume attached to web-1, which both configurations snapshot (`volumes:
  true`), with their own, each other's, no owner's and unmarked volume snapshots: the same
  deletion checks (ours only, a consistent plan's), and `Slots` per volume;
- per-server overrides: web-2's tag and app-1's label override keep_last, and change by
  hand (to another value, one that does not parse, or none); the consistent plan is made
  with the same overrides, so `check_deletions` covers them;
- consistency: shutdown (§5.17) on alpha's `db` (db-1, no force) and beta's `web-b` (web-1,
  `force: true`), with guests that ignore a shutdown, power ons that fail, stops and kills
  after a shutdown was carried out, and servers powered off and on by hand. After every run
  (`_check_power`): no power off without `force`; no server that was off by hand before the
  run, and that the configuration owed nothing, powered on; after every apply not killed
  (stopped ones too), every server a run of the configuration shut down (this one, or a
  killed one before it) is running.

What it found, now fixed, stands as minimal scenarios in test_proof_findings.py: two
configurations snapshotting one droplet in the same second marked each other's images, and
did again when the other's image ended page 1 of the listing and ours began page 2; a
deletion was audited twice after a kill between its audit line and the journal's write; an
after hook owed to a target the next run could not read did not run; a drill server whose
DELETE a killed run sent was crossed off by the next run without an audit line; two drills of
one server in one second shared a name, and the journal lost the first one's server; under
soft delete a DigitalOcean volume snapshot was never marked (its tag write named it an
image), and pin, unpin and undelete refused a volume snapshot as gone.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import tempfile
import threading
from collections import Counter, defaultdict
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import yaml
from cronsim import CronSim
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from snapshot_policy.cli import main
from snapshot_policy.core import consistency
from snapshot_policy.core.model import ActionKind, CloudSnapshot, Plan, Schedule
from snapshot_policy.core.ownership import has_marker, owners_marked
from snapshot_policy.core.reconcile import CLOCK_TOLERANCE
from snapshot_policy.engine.execute import Stop
from snapshot_policy.sandbox import Sandbox
from tests.chaos.harness import DO_TOKEN, ENV, HZ_TOKEN, TIMING, World

START = datetime(2026, 10, 20, 9, 0, tzinfo=timezone.utc)  # Berlin leaves summer time on the 25th
ACCOUNT = {"digitalocean": "do", "hetzner": "hz"}
SERVERS = {"do": {101: "web-1", 102: "web-2"}, "hz": {201: "db-1", 202: "app-1"}}
NOISE_SERVER = {"do": (199, "other-do"), "hz": (299, "other-hz")}
PAGE = {"do": 200, "hz": 50}  # the adapters' page sizes
NOISE = {"do": 205, "hz": 56}  # unmarked snapshots of a server no target covers: more than a page
# servers no target covers: the server listings take two pages
EXTRA_SERVERS = {"do": 205, "hz": 55}
LISTINGS = {
    ("do", "snapshots"): r"^/v2/snapshots$",
    ("do", "servers"): r"^/v2/droplets$",
    ("hz", "snapshots"): r"^/v1/images$",
    ("hz", "servers"): r"^/v1/servers$",
}
DELETE = re.compile(r"^/v2/snapshots/([^/]+)$|^/v1/images/(\d+)$")
"""A snapshot's DELETE: a droplet's image or a volume snapshot (a UUID) on DigitalOcean."""
FIRST_ID = 10_000  # of the seeded snapshots
# DigitalOcean lists by id: a new snapshot given one of these comes first
FRONT = range(1, FIRST_ID)
ACTION_SECONDS = 0.1
HOOK_TIMEOUT = 1
DO_TAG, OWNER_TAG = "snapshot-policy", "snapshot-policy-owner-"
KILLED_AFTER_AUDIT = "(deleted by an interrupted run)"
"""The reason the next run gives a deletion a killed run sent and did not audit."""

BOOT_SECONDS = 0.05
"""How long a drill server boots in the sandbox; `slow_boot` takes SLOW_BOOT, past the
drill's BOOT_TIMEOUT."""
BOOT_TIMEOUT = 0.6
SLOW_BOOT = 1.0
PROBE_TIMEOUT = 0.5
SERVER_PATH = re.compile(r"^/v2/droplets/(\d+)$|^/v1/servers/(\d+)$")
CREATE_PATH = re.compile(r"^/v2/droplets$|^/v1/servers$")
DRILL_TAG, DRILL_LABEL = "snapshot-policy-drill", "snapshot-policy/drill"
HAND_SERVER_ID = 120
"""Servers made by hand get ids from here on (below 199): ids no listing shift lands near."""

# -- issue 23: copies, pins and soft delete, per-server overrides, volumes ---------------------
COPY_REGION = "ams3"
"""alpha's `web` copies each snapshot there (DigitalOcean image transfers)."""
GRACE_DAYS = 1
"""beta deletes softly (`settings.soft_delete`): marked first, deleted a day later at the
earliest, so the clock's jumps cross the grace."""
SOFT = {"beta"}
VOLUME = "5e1f0000-0000-4000-8000-000000000101"
"""A volume attached to web-1 (101); alpha's `web` and beta's `web-b` snapshot it (`volumes:
true`): alpha deletes its snapshots, beta marks them first."""
OVERRIDES = {
    ("do", 102): {"tags": ["snapshot-policy:keep-last:1"]},
    ("hz", 202): {"labels": {"snapshot-policy/keep-last": "2"}},
}
"""Per-server overrides of keep_last: web-2's tag (alpha's web), app-1's label (alpha's app
and beta's db-b)."""
SHUTDOWN_TIMEOUT = 0.5
"""consistency: shutdown on alpha's `db` (db-1, never powered off) and beta's `web-b` (web-1,
`force: true`): how long each waits for the server to be off (seconds, real time)."""
FORCE = {("beta", 101)}
PROOF_TIMING = replace(TIMING, creation_timeout=2)
"""The harness's timing with a shorter creation timeout: a power on owed (a killed run winds
down; its requests are dropped) is asked again until then, and every action here is over in
0.1 s."""
POWER_ON_AGAIN = 0.5
"""consistency.POWER_ON_AGAIN (10 s) scaled down as the proof's actions are: a power on that
failed is sent again this long after it."""
"""(configuration, server) a power off may be sent for: its target has `force: true`."""
POWER = re.compile(r"^/v2/droplets/(\d+)/actions$|^/v1/servers/(\d+)/actions/(\w+)$")
POWER_KINDS = {"shutdown": "shutdown", "power_off": "power_off", "poweroff": "power_off"}


def power_request(request) -> tuple[str, int] | None:
    """(shutdown or power_off, the server's id) of a request that asks for one, else None."""
    found = POWER.match(request.path) if request.method == "POST" else None
    if found is None:
        return None
    if found.group(1):
        try:
            kind = json.loads(request.body or b"{}").get("type")
        except (ValueError, AttributeError):
            return None
        server_id = int(found.group(1))
    else:
        kind, server_id = found.group(3), int(found.group(2))
    return (POWER_KINDS[kind], server_id) if kind in POWER_KINDS else None


PIN_LABEL, PENDING_LABEL = "snapshot-policy/pinned-until", "snapshot-policy/pending-delete"
PIN_TAG, PENDING_TAG = "snapshot-policy-pinned-until-", "snapshot-policy-pending-delete-"
GARBLED = object()
"""A pin or pending-delete mark whose day cannot be read."""

PROBE = """\
d=$1
[ -e "$d/dead" ] && exit 0
echo "probe $SNAPSHOT_POLICY_DRILL_SERVER_NAME" >> "$d/probes.log"
case "$(cat "$d/probe.mode" 2>/dev/null)" in
  fail) exit 4 ;;
  hang) sleep 30 ;;
esac
"""


def drill(public: bool) -> dict:
    """A daily drill with a probe that passes, fails or hangs past its timeout (probe.mode)."""
    return {
        "every": "1d",
        "probe": ["sh", "-c", PROBE, "probe", "@FOLDER@"],
        "probe_timeout": PROBE_TIMEOUT,
        "boot_timeout": BOOT_TIMEOUT,
        "public_network": public,
    }


HOOK = """\
d=$1; w=$2
[ -e "$d/dead" ] && exit 0
s="$SNAPSHOT_POLICY_SNAPSHOT ${SNAPSHOT_POLICY_STATUS:--}"
echo "$w $SNAPSHOT_POLICY_TARGET $SNAPSHOT_POLICY_SERVER_ID $s" >> "$d/hooks.log"
case "$(cat "$d/$w.mode" 2>/dev/null)" in
  fail) exit 3 ;;
  hang) sleep 30 ;;
esac
"""


def hooks() -> dict:
    return {
        which: ["sh", "-c", HOOK, "hook", "@FOLDER@", which] for which in ("before", "after")
    } | {"timeout": HOOK_TIMEOUT}


def policy(owner: str, targets: list[dict], **settings) -> str:
    return yaml.safe_dump(
        {
            "version": 1,
            "accounts": {
                "do": {
                    "provider": "digitalocean",
                    "token": "env:CHAOS_DO_TOKEN",
                    "endpoint": "@DO@",
                },
                "hz": {"provider": "hetzner", "token": "env:CHAOS_HZ_TOKEN", "endpoint": "@HZ@"},
            },
            "targets": targets,
            # the journal and run state beside the lock are the World's: the CLI's pin,
            # unpin and undelete read and write the same files as the proof's runs
            "settings": {
                "owner": owner,
                "lock_file": "@FOLDER@/run.lock",
                "audit_log": "@FOLDER@/audit.jsonl",
                **settings,
            },
        },
        sort_keys=False,
    )


POLICIES = {
    "alpha": policy(
        "alpha",
        [
            {
                "name": "web",
                "account": "do",
                "ids": [101, 102],
                "schedule": {"cron": "0 */6 * * *"},
                "retention": {"keep_last": 3, "keep_daily": 2},
                "safety": {"max_deletions": 6},  # counted across web-1, web-2 and the volume
                "copies": [{"region": COPY_REGION}],
                "volumes": True,
                "hooks": hooks(),
                "drill": drill(False),
            },
            {
                "name": "db",
                "account": "hz",
                "ids": [201],
                "schedule": {"cron": "0 */8 * * *"},
                "timezone": "Europe/Berlin",
                "retention": {"keep_last": 2, "keep_daily": 3},
                "consistency": {"mode": "shutdown", "timeout": SHUTDOWN_TIMEOUT},
                "hooks": hooks(),
            },
            {
                "name": "app",
                "account": "hz",
                "ids": [202],
                "schedule": {"every": "12h"},
                "retention": {"keep_last": 3},
                "drill": drill(True),
            },
        ],
    ),
    "beta": policy(
        "beta",
        [
            {
                "name": "web-b",
                "account": "do",
                "ids": [101],
                "schedule": {"cron": "30 */12 * * *"},
                "retention": {"keep_last": 2},
                "hooks": hooks(),
                "volumes": True,
                "consistency": {"mode": "shutdown", "force": True, "timeout": SHUTDOWN_TIMEOUT},
            },
            {
                "name": "db-b",
                "account": "hz",
                "ids": [201, 202],
                "schedule": {"cron": "0 3 * * *"},
                "retention": {"keep_last": 1, "keep_weekly": 1},
                "drill": drill(True),
            },
        ],
        soft_delete=f"{GRACE_DAYS}d",
    ),
}


def marked(account: str, server_id: int, owner: str | None) -> dict:
    """The marker the tool puts on what it makes (owner None: as versions before owners did)."""
    if account == "do":
        return {"tags": [DO_TAG] + ([OWNER_TAG + owner] if owner else [])}
    labels = {"managed-by": "snapshot-policy", "snapshot-policy/server-id": str(server_id)}
    return {"labels": labels | ({"snapshot-policy/owner": owner} if owner else {})}


def seed_state() -> dict:
    """Target servers with a few snapshots of each configuration's, an old one without owner and
    a manual one, mixed by id among more than a page of noise, so the page boundary falls
    among them; and more than a page of servers."""
    rng = random.Random(19)
    snapshots = []
    for account, servers in SERVERS.items():
        noise_id, noise_name = NOISE_SERVER[account]
        for n in range(NOISE[account]):
            created = START - timedelta(days=rng.randint(2, 60), minutes=n)
            snapshots.append(
                {
                    "account": account,
                    "server_id": noise_id,
                    "name": f"{noise_name}-manual-{n}",
                    "created": created.isoformat(),
                }
            )
        for server_id, name in servers.items():
            for owner, count in (("alpha", 3), ("beta", 2), (None, 1)):
                for n in range(count):
                    created = START - timedelta(
                        days=n + 1 + (owner is None) * 5, hours=rng.randint(0, 5)
                    )
                    snapshots.append(
                        {
                            "account": account,
                            "server_id": server_id,
                            "name": f"{name}-{created:%Y%m%d%H%M%S}",
                            "created": created.isoformat(),
                            **marked(account, server_id, owner),
                        }
                    )
            snapshots.append(
                {
                    "account": account,
                    "server_id": server_id,
                    "name": f"{name} manual",
                    "created": (START - timedelta(days=40)).isoformat(),
                }
            )
    _seed_marks(snapshots)
    rng.shuffle(snapshots)
    for number, snapshot in enumerate(snapshots):
        snapshot["id"] = FIRST_ID + number
    servers = [
        {"account": a, "id": i, "name": n, **OVERRIDES.get((a, i), {})}
        for a, named in SERVERS.items()
        for i, n in named.items()
    ]
    servers += [
        {"account": a, "id": NOISE_SERVER[a][0], "name": NOISE_SERVER[a][1]} for a in SERVERS
    ]
    servers += [
        {"account": a, "id": 5000 + 1000 * (a == "hz") + n, "name": f"extra-{a}-{n}"}
        for a in SERVERS
        for n in range(EXTRA_SERVERS[a])
    ]
    return {
        "accounts": [
            {"name": "do", "provider": "digitalocean", "tokens": [DO_TOKEN], "rate_limit": 10**9},
            {"name": "hz", "provider": "hetzner", "tokens": [HZ_TOKEN], "rate_limit": 10**9},
        ],
        "servers": servers,
        "snapshots": snapshots,
        "volumes": [
            {"account": "do", "id": VOLUME, "name": "data", "region": "nyc3", "droplet_ids": [101]}
        ],
        "volume_snapshots": _volume_snapshots(),
    }


def _seed_marks(snapshots: list[dict]) -> None:
    """Pins and pending-delete marks on some seeded snapshots: a pin that holds, a due mark,
    and marks whose day cannot be read (a pin that keeps; a pending mark that is no mark)."""
    until = (START + timedelta(days=2)).date().isoformat()
    due = (START - timedelta(days=1)).date().isoformat()
    pinned = False
    for snapshot in snapshots:
        owner = owners({"id": 0, **snapshot})
        if not owner:
            continue
        key = (snapshot["account"], snapshot["server_id"], *owner)
        if key == ("hz", 202, "alpha") and not pinned:
            snapshot["labels"][PIN_LABEL] = until
            pinned = True
        elif key == ("hz", 201, "beta"):
            snapshot["labels"][PENDING_LABEL] = due
        elif key == ("do", 101, "beta"):
            snapshot["tags"].append(PENDING_TAG + "soon")
        elif key == ("do", 102, "alpha"):
            snapshot["tags"].append(PIN_TAG + "someday")


def _volume_snapshots() -> list[dict]:
    """The volume's snapshots: beta's, alpha's (alpha does not snapshot volumes), one of no
    owner, and unmarked ones (one named as the tool names them)."""
    made = []
    for n, (owner, marks) in enumerate(
        [("beta", True), ("beta", True), ("alpha", True), (None, True), (None, False)] * 2
    ):
        created = START - timedelta(days=n // 2 + 1, hours=n)
        tags = [DO_TAG] + ([OWNER_TAG + owner] if owner else []) if marks else []
        made.append(
            {
                "account": "do",
                "id": f"5e1f0000-0000-4000-8000-{n:012d}",
                "volume_id": VOLUME,
                "name": f"web-1-data-{created:%Y%m%d%H%M%S}",
                "created": created.isoformat(),
                "tags": tags,
            }
        )
    made.append(
        {
            "account": "do",
            "id": "5e1f0000-0000-4000-8000-999999999999",
            "volume_id": VOLUME,
            "name": "data before upgrade",
            "created": (START - timedelta(days=3)).isoformat(),
        }
    )
    return made


def owners(snapshot: dict) -> frozenset[str]:
    provider = "digitalocean" if snapshot["account"] == "do" else "hetzner"
    return owners_marked(provider, _cloud(snapshot))


def is_marked(snapshot: dict) -> bool:
    provider = "digitalocean" if snapshot["account"] == "do" else "hetzner"
    return has_marker(provider, _cloud(snapshot))


def _cloud(snapshot: dict) -> CloudSnapshot:
    labels = (
        {t: "" for t in snapshot.get("tags") or []}
        if snapshot["account"] == "do"
        else snapshot.get("labels") or {}
    )
    return CloudSnapshot(str(snapshot["id"]), snapshot["name"], START, None, labels)


def created(snapshot: dict) -> datetime:
    return datetime.fromisoformat(snapshot["created"].replace("Z", "+00:00"))


def sid(value: object) -> int | str:
    """A snapshot's id as the proof keeps it: an image's a number, a volume snapshot's its
    UUID."""
    text = str(value)
    return int(text) if text.isdigit() else text


def all_snapshots(dump: dict) -> dict[int | str, dict]:
    """Every snapshot of a sandbox dump by id: images, and volume snapshots (DigitalOcean;
    their `server_id` is the volume's)."""
    found: dict[int | str, dict] = {s["id"]: s for s in dump["snapshots"]}
    for snapshot in dump.get("volume_snapshots", []):
        found[snapshot["id"]] = {**snapshot, "server_id": snapshot["volume_id"], "volume": True}
    return found


def _day_mark(snapshot: dict, label: str, tag: str) -> date | object | None:
    """The day of a pin or pending-delete mark (GARBLED if it cannot be read), or None:
    read here from the labels and tags, not by ownership, so the check does not share the
    code it checks."""
    if snapshot["account"] == "hz":
        text = (snapshot.get("labels") or {}).get(label)
    else:
        found = [t[len(tag) :] for t in snapshot.get("tags") or [] if t.lower().startswith(tag)]
        text = found[0] if found else None
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return GARBLED


def pin_of(snapshot: dict) -> date | object | None:
    return _day_mark(snapshot, PIN_LABEL, PIN_TAG)


def pending_of(snapshot: dict) -> date | object | None:
    return _day_mark(snapshot, PENDING_LABEL, PENDING_TAG)


def pin_holds(snapshot: dict, today: date) -> bool:
    """A pin keeps the snapshot today: its day is today or later, or cannot be read."""
    pin = pin_of(snapshot)
    return pin is GARBLED or (pin is not None and pin >= today)


def marks_of(snapshot: dict) -> tuple:
    return tuple(sorted(snapshot.get("tags") or [])), tuple(
        sorted((snapshot.get("labels") or {}).items())
    )


# -- checks ---------------------------------------------------------------------------------


@dataclass
class Creation:
    config: str
    server: tuple[str, int]
    id: int
    created: datetime
    name: str


class Slots:
    """No two snapshots started for one server by one configuration in one schedule slot: one cron
    firing, or one `every` interval. Not counted: a pair whose earlier snapshot someone else deleted
    before the later one was started, and a snapshot started while the clock read earlier than one
    the configuration made of the server before (docs/promises.md §5, invariant 9: a snapshot dated
    in the future is left out of the schedule, so a clock that went back can make a slot's snapshot
    again)."""

    def __init__(self, worlds: dict[str, World]):
        self.schedules: dict[tuple[str, tuple[str, int]], tuple[Schedule, ZoneInfo]] = {}
        for config, world in worlds.items():
            for spec in world.loaded.targets:
                for server_id in spec.selector.ids:
                    self.schedules[(config, (spec.account.name, int(server_id)))] = (
                        spec.schedule,
                        ZoneInfo(spec.timezone),
                    )
                    if spec.volumes and int(server_id) == 101:
                        self.schedules[(config, (spec.account.name, VOLUME))] = (
                            spec.schedule,
                            ZoneInfo(spec.timezone),
                        )
        self.made: dict[tuple[str, tuple[str, int]], list[Creation]] = defaultdict(list)
        self.gone_by_others: dict[int, int] = {}
        """Snapshot id -> the number of the run during which someone else deleted it."""

    def add(self, creation: Creation, run: int) -> None:
        key = (creation.config, creation.server)
        schedule, zone = self.schedules[key]
        earlier = self.made[key]
        went_back = any(e.created > creation.created + CLOCK_TOLERANCE for e in earlier)
        for other in earlier:
            if self.gone_by_others.get(other.id, run + 1) <= run or not self._one_slot(
                schedule, zone, other.created, creation.created
            ):
                continue
            if not went_back:
                raise AssertionError(
                    f"{creation.config}: {other.name} ({other.id}) and {creation.name} "
                    f"({creation.id}) started for server {creation.server} in one slot of "
                    f"{schedule.describe()}"
                )
            COUNTS["one slot twice, the clock having gone back past a snapshot"] += 1
            break
        earlier.append(creation)

    @staticmethod
    def _one_slot(schedule: Schedule, zone: ZoneInfo, first: datetime, second: datetime) -> bool:
        if schedule.cron:
            fired = [
                next(
                    CronSim(
                        schedule.cron, (t + timedelta(seconds=1)).astimezone(zone), reverse=True
                    )
                )
                for t in (first, second)
            ]
            return fired[0] == fired[1]
        interval = schedule.every.as_timedelta()
        slack = min(interval * 0.1, timedelta(hours=1))
        return abs(second - first) < interval - slack


class Hooks:
    """Every `after` ran once for every `before` of a configuration, read from its hooks.log:
    a run ends with none owed, or, if it was killed, the next completed run does. A second
    `after` for one `before` only where a stop or kill could have cut the first short; an
    `after` with no `before` only after a kill (killed between the journal entry and the
    command's first line)."""

    def __init__(self, folder: Path):
        self.path = folder / "hooks.log"
        self.read = 0
        self.owed: dict[tuple[str, str], list[str]] = defaultdict(list)
        self.paired: Counter = Counter()

    def take(self, interrupted: bool, after_kill: bool) -> None:
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        for line in lines[self.read :]:
            which, target, server, name, _ = line.split(" ")
            key = (target, server)
            if which == "before":
                self.owed[key].append(name)
            elif name in self.owed[key]:
                self.owed[key].remove(name)
                self.paired[(key, name)] += 1
            elif self.paired[(key, name)]:
                assert interrupted, (
                    f"{target}/{server}: a second after hook for {name} in a run neither "
                    "stopped nor killed"
                )
                COUNTS["after hook run again after a stop or kill"] += 1
            else:  # a before hook killed at a stop before it wrote its line still owes its after
                assert after_kill or interrupted, (
                    f"{target}/{server}: an after hook for {name} whose before hook never ran"
                )
                COUNTS["after hook of a before killed before its first line"] += (
                    interrupted and not after_kill
                )
        self.read = len(lines)

    def settled(self) -> None:
        """Nothing owed, whether or not the last run could read the target."""
        owed = {key: names for key, names in self.owed.items() if names}
        assert not owed, f"before hooks whose after hook never ran: {owed}"


MARK_TAGS = re.compile(r"^/v2/tags/[^/]+/resources$")
REQUESTS = {
    "create": lambda request: (
        request.method == "POST" and re.search(r"/actions$|/actions/create_image$", request.path)
    ),
    "delete": lambda request: request.method == "DELETE" and DELETE.match(request.path),
    "drill create": lambda request: request.method == "POST" and CREATE_PATH.match(request.path),
    "drill delete": lambda request: request.method == "DELETE" and SERVER_PATH.match(request.path),
    "shutdown": lambda request: power_request(request) is not None,
    "transfer": lambda request: (
        request.method == "POST" and re.match(r"^/v2/images/\d+/actions$", request.path)
    ),
    "mark": lambda request: (
        (request.method == "PUT" and re.match(r"^/v1/images/\d+$", request.path))
        or (request.method in ("POST", "DELETE") and MARK_TAGS.match(request.path))
    ),
}


@dataclass(frozen=True)
class ServerSeen:
    """A server as the sandbox held it: its marks as one dict (DigitalOcean tags as keys)."""

    id: int
    account: str
    name: str
    marks: dict


@dataclass(frozen=True)
class ServerDeletion:
    """A DELETE the sandbox carried out on a server: during whose run, of what, and whether
    that configuration's journal (on disk, right then) had an open drill entry naming it."""

    config: str
    server: ServerSeen
    journaled: bool


class TappedSandbox(Sandbox):
    """The sandbox, showing `tap` each cloud request it carried out before its reply leaves:
    a kill can land after the cloud acted and before the client heard. A tap that returns
    True has the reply dropped (the client died before it arrived).

    It also keeps what the proof checks drill servers by: every server a create made
    (`made`: id -> the configuration whose run made it, and the run's number) and every
    DELETE carried out on a server (`deletions`), whatever became of the replies."""

    tap = None
    running: tuple[str, int, Path] | None = None
    """The configuration whose run is under way, the run's number, its journal file."""

    def __init__(self, *args, **options):
        super().__init__(*args, **options)
        self.made: dict[int, tuple[str, int]] = {}
        self.deletions: list[ServerDeletion] = []
        self.copies: dict[tuple[str, int], tuple[str, ...]] = {}
        """(configuration, droplet id) -> the regions its target copies each snapshot to."""
        self.uncopied: list[str] = []
        """Deletions carried out while the newest snapshot lacked a copy (§5.15)."""
        self.shut: dict[str, set[int]] = defaultdict(set)
        """Configuration -> the servers its runs sent a shutdown or power off for, until a
        completed run of it has seen them running (§5.17)."""
        self.power_offs: list[str] = []
        """Power offs sent without `force: true`."""

    def serve(self, request):
        running = self.running
        if running is not None and request.method == "DELETE" and DELETE.match(request.path):
            self._check_copies(request, running[0])
        if running is not None and request.method == "POST" and POWER.match(request.path):
            self._power(request, running[0])
        if running is not None and (
            (request.method == "POST" and CREATE_PATH.match(request.path))
            or (request.method == "DELETE" and SERVER_PATH.match(request.path))
        ):
            response = self._watched(request, *running)
        else:
            response = super().serve(request)
        tap = self.tap
        if (
            tap is not None
            and response is not None
            and not request.path.startswith("/_sandbox/")
            and tap(request)
        ):
            return None
        return response

    def _power(self, request, config: str) -> None:
        """Note a shutdown or power off `config`'s run sent (carried out or not)."""
        found = power_request(request)
        if found is None:
            return
        kind, server_id = found
        self.shut[config].add(server_id)
        COUNTS[f"{kind} sent"] += 1
        if kind == "power_off" and (config, server_id) not in FORCE:
            self.power_offs.append(f"{config} powered server {server_id} off without force")

    def _check_copies(self, request, config: str) -> None:
        """docs/promises.md §5.15, at the moment of a DELETE of an image of a droplet whose
        target has `copies`: the newest finished snapshot of that droplet this configuration
        manages (our tag, no other owner's, not dated after the clock) is in every region."""
        image_id = DELETE.match(request.path).group(1)
        if image_id is None or not image_id.isdigit():
            return
        with self.state.lock:
            self.state.advance()  # transfers whose time is up have their copy
            image = self.state.snapshots.get(int(image_id))
            regions = self.copies.get((config, image.server_id)) if image else None
            if not regions:
                return
            now = self.state.clock()
            ours = [
                s
                for s in self.state.snapshots.values()
                if s.account == image.account
                and s.server_id == image.server_id
                and s.status == "available"
                and DO_TAG in s.tags
                and {t for t in s.tags if t.startswith(OWNER_TAG)} <= {OWNER_TAG + config}
                and s.created <= now + CLOCK_TOLERANCE
            ]
            newest = max(ours, key=lambda s: (s.created, s.id), default=None)
            if newest is None:
                return
            lacking = sorted(set(regions) - {newest.region, *newest.copies})
            if lacking:
                self.uncopied.append(
                    f"{config} deleted {image.name} ({image.id}) while the newest snapshot of "
                    f"droplet {image.server_id}, {newest.name} ({newest.id}), had no copy in "
                    f"{', '.join(lacking)}"
                )
            else:
                COUNTS["deletions with the newest snapshot copied"] += 1

    def _watched(self, request, config: str, run: int, journal: Path):
        """Serve a server create or delete while no other request changes the servers."""
        with self.state.lock:
            before = {i: seen(s) for i, s in self.state.servers.items()}
            entries = _drill_entries(journal) if request.method == "DELETE" else set()
            response = super().serve(request)
            after = set(self.state.servers)
        for server_id in after - set(before):
            self.made[server_id] = (config, run)
        for server_id in set(before) - after:
            server = before[server_id]
            self.deletions.append(ServerDeletion(config, server, server.name in entries))
        return response


def seen(server) -> ServerSeen:
    marks = {t: "" for t in server.tags} if server.account == "do" else dict(server.labels)
    return ServerSeen(server.id, server.account, server.name, marks)


def _drill_entries(journal: Path) -> set[str]:
    """The names of the open drill entries of a journal file."""
    content = _read(journal)
    entries = json.loads(content) if content else []
    return {e["name"] for e in entries if "drill" in e}


def drill_marked(server: ServerSeen, owner: str) -> bool:
    """The drill mark and `owner`'s, and no other owner's: written out here, not taken from
    ownership, so that the check does not share the code it checks."""
    marks = server.marks
    if server.account == "do":
        owners = {t for t in marks if t.startswith(OWNER_TAG)}
        return DRILL_TAG in marks and owners == {OWNER_TAG + owner}
    return (
        marks.get(DRILL_LABEL) == "true"
        and marks.get("managed-by") == "snapshot-policy"
        and marks.get("snapshot-policy/owner") == owner
    )


class DrillServers:
    """docs/promises.md §5, invariant 14, checked over the whole history: every server ever
    deleted was a drill server this configuration made (in one of its runs), marked as its
    own and named in its journal at that moment; no drill server outlives the next completed
    run of the configuration that made it; servers made by hand (with drill marks of no
    owner, another owner's, ours without a journal entry, or a drill server renamed by hand)
    are never deleted; and each drill server deletion is audited once."""

    def __init__(self, sandbox: TappedSandbox):
        self.sandbox = sandbox
        self.hand: set[int] = set()
        """Servers made or renamed by hand: never to be deleted."""
        self.checked = 0

    def check_deletions(self) -> None:
        made = self.sandbox.made
        for deletion in self.sandbox.deletions[self.checked :]:
            server, config = deletion.server, deletion.config
            name = f"server {server.name} ({server.id})"
            assert server.id not in self.hand, f"{config} deleted {name}, made by hand"
            maker = made.get(server.id)
            assert maker is not None, f"{config} deleted {name}, which no drill created"
            assert maker[0] == config, f"{config} deleted {name}, a drill server of {maker[0]}"
            assert drill_marked(server, config), (
                f"{config} deleted {name}, which does not carry its drill marks: {server.marks}"
            )
            assert deletion.journaled, f"{config} deleted {name}, which its journal did not name"
            COUNTS["drill servers deleted"] += 1
        self.checked = len(self.sandbox.deletions)

    def check_none_left(self, config: str, run: int, own_too: bool) -> None:
        """After a completed run of `config`: no drill server of an earlier run of it (and,
        with `own_too`, none of this run) exists, but those renamed by hand."""
        with self.sandbox.state.lock:
            existing = {i: s.name for i, s in self.sandbox.state.servers.items()}
        left = sorted(
            f"{existing[i]} ({i}, made by run {by})"
            for i, (maker, by) in self.sandbox.made.items()
            if maker == config and i in existing and i not in self.hand
            and (by < run or own_too)
        )  # fmt: skip
        assert not left, f"drill servers outlived the next completed run: {left}"

    def check_audit(self, config: str, world: World) -> None:
        """Each drill server `config` deleted is audited `drill server deleted` once, or its
        journal entry still waits (a killed run's deletion, seen by a later run); nothing is
        audited as deleted that was not."""
        lines = [json.loads(line) for line in _lines(world.audit_file)]
        said = Counter(
            (line["account"], str(line["drill_server_id"] or line["drill_server_name"]))
            for line in lines
            if line["event"] == "drill server deleted"
        )
        twice = sorted(key for key, count in said.items() if count > 1)
        assert not twice, f"drill server deletions audited more than once: {twice}"
        deleted = {
            (d.server.account, str(d.server.id)): d.server.name
            for d in self.sandbox.deletions
            if d.config == config
        }
        waiting = _drill_entries(world.journal_file)
        unaudited = sorted(
            f"{name} ({key[1]})"
            for key, name in deleted.items()
            if key not in said and name not in waiting
        )
        assert not unaudited, f"drill servers deleted but never audited: {unaudited}"
        invented = sorted(set(said) - set(deleted))
        assert not invented, f"audited as deleted, but never deleted: {invented}"


class Interrupter(threading.Thread):
    """Interrupts a run (`interrupt`) `delay` seconds after the first `event` of it: its start,
    its first snapshot POST or DELETE carried out by the cloud (with no delay: before the
    reply leaves), its first before or after hook started, its first deletion audited, its
    first drill server create or DELETE carried out (a delay after the create lands in the
    boot), its first probe started. Not at all if the run ends first."""

    def __init__(
        self, sandbox: TappedSandbox, world: World, event: str, delay: float, interrupt
    ) -> None:
        super().__init__(name="interrupter", daemon=True)
        self.sandbox, self.event, self.delay, self.interrupt = sandbox, event, delay, interrupt
        self.file = {
            "before hook": world.folder / "hooks.log",
            "after hook": world.folder / "hooks.log",
            "audited": world.audit_file,
            "drill probe": world.folder / "probes.log",
        }.get(event)
        self.seen = len(_lines(self.file)) if self.file else 0
        self.happened = threading.Event()
        self.over = threading.Event()
        self.lock = threading.Lock()
        self.fired = False
        if event in REQUESTS:
            sandbox.tap = self._tap

    def _tap(self, request) -> bool:
        if self.happened.is_set() or not REQUESTS[self.event](request):
            return False
        self.happened.set()
        return not self.delay and self._fire()

    def _fire(self) -> bool:
        with self.lock:
            if self.fired or self.over.is_set():
                return False
            self.fired = True
            self.interrupt()
            return True

    def run(self) -> None:
        while not self._happened():
            if self.over.wait(0.002):
                return
        if self.delay and self.over.wait(self.delay):
            return
        self._fire()

    def _happened(self) -> bool:
        if self.event == "start" or self.happened.is_set():
            return True
        if self.file is not None:
            word = {
                "before hook": "before ",
                "after hook": "after ",
                "audited": '"event": "deleted"',
                "drill probe": "probe ",
            }[self.event]
            return any(word in line for line in _lines(self.file)[self.seen :])
        return False

    def finish(self) -> None:
        """The run is over: interrupt nothing more; wait for an interruption under way."""
        self.sandbox.tap = None
        with self.lock:
            self.over.set()
        self.join()


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


# -- the machine ----------------------------------------------------------------------------

SHIFT = st.fixed_dictionaries(
    {
        "account": st.sampled_from(["do", "hz"]),
        "listing": st.sampled_from(["snapshots", "snapshots", "snapshots", "servers"]),
        "page": st.sampled_from([1, 1, 2, None]),
        "count": st.sampled_from([1, 1, 2, None]),
        "insert": st.sampled_from([0, 1, 2, 3, 5, 8, 13]),
        "front": st.booleans(),
        "delete": st.lists(st.integers(-4, 4), max_size=2, unique=True),
        "ours_too": st.sampled_from([False, False, True]),
        "owner": st.sampled_from([None, "noise", "target"]),
        "aim": st.one_of(st.none(), st.integers(0, 5)),
        "off": st.integers(-2, 1),
    }
)
CONFIG = st.sampled_from(["alpha", "beta"])
LATER = st.sampled_from([0, 0, 0, 1, 3, 6, 12])
DUE = st.sampled_from([0, 4, 6, 8, 12])
"""Hours before an interrupted run: mostly enough for snapshots to be due, so there is
something to interrupt."""
WHEN = st.tuples(
    st.sampled_from(
        ["start", "create", "create", "delete", "delete", "before hook", "after hook", "audited"]
    ),
    st.sampled_from([0.0, 0.0, 0.0, 0.003, 0.02, 0.1, 0.3]),
)
"""The moment of an interruption: this long after the first such event of the run."""
DRILL_WHEN = st.tuples(
    st.sampled_from(["drill create", "drill create", "drill probe", "drill delete", "start"]),
    st.sampled_from([0.0, 0.0, 0.05, 0.1, 0.3]),
)
"""The moment of an interruption tied to a drill: after its create was carried out and before
the reply leaves (0), while its server boots (0.05, 0.1 after the create), while the probe
runs, after its DELETE was carried out."""
DRILL_LATER = st.sampled_from([0, 6, 24, 25])
"""Hours before a run about drills: a day makes the daily drills due again."""
DRILL_FAULTS = st.lists(
    st.sampled_from(["lose create", "boot fail", "slow boot", "delete fails", "delete fails"]),
    max_size=2,
    unique=True,
)
"""Faults of a run's drills: the reply to a create lost (the server is made), a server that
does not boot, one that boots past the boot timeout, a DELETE answered 500 (once)."""
LATER_23 = st.sampled_from([0, 6, 12, 24, 25, 49])
"""Hours before a run about marks and copies: up to two days, so beta's marks fall due."""
WHEN_23 = st.tuples(
    st.sampled_from(
        ["mark", "mark", "transfer", "transfer", "shutdown", "shutdown", "delete", "create"]
    ),
    st.sampled_from([0.0, 0.0, 0.003, 0.05, 0.1, 0.3]),
)
"""The moment of an interruption about marks and copies: after a label or tag write, or a
transfer's start, was carried out and before its reply leaves (0), or a little later (while
a transfer runs, 0.05 and 0.1)."""
TARGET_SERVER = st.sampled_from([(a, s) for a, servers in SERVERS.items() for s in servers])

COUNTS: Counter = Counter()
"""Over every example the test ran: steps, runs and what happened in them, for the report."""


@dataclass
class RunRecord:
    config: str
    interruption: str | None
    command: str = "apply"


class Proof(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="proof-"))
        self.now = START
        self.sandbox = TappedSandbox(
            seed_state(),
            action_seconds=ACTION_SECONDS,
            boot_seconds=BOOT_SECONDS,
            clock=lambda: self.now,
        ).start()
        self.worlds = {
            c: World(
                self.root / c,
                {},
                POLICIES[c],
                START,
                shared=self.sandbox,
                drills=True,
                timing=PROOF_TIMING,
            )
            for c in POLICIES
        }
        self.power_on_again = consistency.POWER_ON_AGAIN
        consistency.POWER_ON_AGAIN = POWER_ON_AGAIN
        self._set_clock(START)
        self.mirror = Sandbox({}, clock=lambda: self.now).start()
        self.mirrors = {
            c: World(self.root / f"mirror-{c}", {}, POLICIES[c], START, shared=self.mirror)
            for c in self.worlds
        }
        self.manual = {
            i for i, s in all_snapshots(self.sandbox.dump_state()).items() if not is_marked(s)
        }
        self.slots = Slots(self.worlds)
        self.hooks = {c: Hooks(w.folder) for c, w in self.worlds.items()}
        self.sent: dict[str, set[int]] = defaultdict(set)
        """Per configuration, the snapshot ids it sent a DELETE for (answered or not)."""
        self.removed: dict[str, set[int]] = defaultdict(set)
        """Per configuration, the snapshot ids its DELETE removed (the sandbox answered 2xx)."""
        self.runs: list[RunRecord] = []
        self.killed: dict[str, bool] = defaultdict(bool)
        self.servers = DrillServers(self.sandbox)
        self.next_hand_id = HAND_SERVER_ID
        self.zones: dict[tuple[str, str, int | str], ZoneInfo] = {}
        """(configuration, account, server or volume id) -> its target's timezone."""
        for (config, server), (_, zone) in self.slots.schedules.items():
            self.zones[(config, *server)] = zone
        for config, world in self.worlds.items():
            for spec in world.loaded.targets:
                for server_id in spec.selector.ids if spec.copies else ():
                    self.sandbox.copies[(config, int(server_id))] = spec.copies
        self.hand_off: set[int] = set()
        """Target servers powered off by hand (and not on again since)."""
        self.environ = {k: os.environ.get(k) for k in ENV}
        os.environ.update(ENV)  # the CLI's pin, unpin and undelete read the tokens there

    def teardown(self) -> None:
        consistency.POWER_ON_AGAIN = self.power_on_again
        for key, value in self.environ.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for world in [*self.worlds.values(), *self.mirrors.values()]:
            world.close()
        self.sandbox.stop()
        self.mirror.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- the clock and the people --------------------------------------------------------

    def _set_clock(self, now: datetime) -> None:
        self.now = now
        for world in self.worlds.values():
            world.now = now

    @rule(hours=st.sampled_from([1, 2, 3, 5, 6, 8, 12, 24, 49, 73]))
    def time_passes(self, hours: int) -> None:
        self._set_clock(self.now + timedelta(hours=hours))
        COUNTS["steps"] += 1
        COUNTS["clock forward"] += 1

    @rule(hours=st.integers(1, 6))
    def clock_goes_back(self, hours: int) -> None:
        self._set_clock(self.now - timedelta(hours=hours))
        COUNTS["steps"] += 1
        COUNTS["clock back"] += 1

    @rule(server=TARGET_SERVER, look_alike=st.booleans())
    def hand_made(self, server: tuple[str, int], look_alike: bool) -> None:
        """An unmarked snapshot made by hand; a look-alike carries exactly the name the tool
        would give it (dated half an hour ago: a journal entry cannot adopt it)."""
        account, server_id = server
        when = self.now - timedelta(minutes=30)
        name = (
            f"{SERVERS[account][server_id]}-{when:%Y%m%d%H%M%S}"
            if look_alike
            else f"{SERVERS[account][server_id]} before upgrade"
        )
        with self.sandbox.state.lock:
            made = self.sandbox.state.add_snapshot(account, name, server_id=server_id, created=when)
        self.manual.add(made.id)
        COUNTS["steps"] += 1
        COUNTS["hand-made"] += 1

    @rule(server=TARGET_SERVER, owner=st.sampled_from(["alpha", "beta", None]))
    def hand_marked(self, server: tuple[str, int], owner: str | None) -> None:
        """Our marker put on by hand, on a snapshot named as the tool would not name it."""
        account, server_id = server
        mark = marked(account, server_id, owner)
        with self.sandbox.state.lock:
            self.sandbox.state.add_snapshot(
                account,
                f"{SERVERS[account][server_id]} golden",
                server_id=server_id,
                created=self.now - timedelta(hours=1),
                **mark,
            )
        COUNTS["steps"] += 1
        COUNTS["hand-marked"] += 1

    def _move_the_page_boundary(self, account: str, aim: int, off: int) -> None:
        """Other people make and delete snapshots of other servers, here so that one of the
        newest marked snapshots of a target server ends page 1 (give or take `off`), where a
        shift pushes it onto page 2 as well: newest, so retention keeps it, and counting it
        twice would push another one out."""
        state = self.sandbox.state
        with state.lock:
            items = sorted(
                (s for s in state.snapshots.values() if s.account == account),
                key=lambda s: s.id,
                reverse=account == "hz",
            )
            ours = sorted(
                (
                    i
                    for i, s in enumerate(items)
                    if s.server_id in SERVERS[account] and (s.tags or s.labels)
                ),
                key=lambda i: items[i].created,
                reverse=True,
            )
            if not ours:
                return
            position = ours[aim % min(len(ours), 6)]
            wanted = PAGE[account] - 1 + off
            noise_id, noise_name = NOISE_SERVER[account]
            free = (i for i in FRONT if i not in state.snapshots) if account == "do" else iter(())
            # new ones ahead of it: newer on Hetzner, lower ids on DigitalOcean
            for _ in range(wanted - position):
                made = state.add_snapshot(
                    account,
                    f"{noise_name}-by-others",
                    server_id=noise_id,
                    id=next(free, None),
                    created=self.now - timedelta(days=3),
                )
                self.manual.add(made.id)
            ahead = [s for s in items[:position] if s.id in self.manual and s.server_id == noise_id]
            for snapshot in ahead[: max(0, position - wanted)]:
                state.delete_snapshot(snapshot)
        COUNTS["page boundary moved"] += 1

    @rule(pick=st.integers(0, 50))
    def protect(self, pick: int) -> None:
        state = self.sandbox.state
        with state.lock:
            ours = sorted(
                (
                    s
                    for s in state.snapshots.values()
                    if s.account == "hz" and s.labels.get("managed-by") and not s.protected
                ),
                key=lambda s: s.id,
            )
            if ours:
                ours[pick % len(ours)].protected = True
        COUNTS["steps"] += 1
        COUNTS["protected"] += 1

    @rule(
        config=CONFIG,
        before=st.sampled_from(["ok", "ok", "fail", "hang"]),
        after=st.sampled_from(["ok", "ok", "fail"]),
    )
    def hooks_behave(self, config: str, before: str, after: str) -> None:
        for which, mode in (("before", before), ("after", after)):
            (self.worlds[config].folder / f"{which}.mode").write_text(mode)
        COUNTS["steps"] += 1

    @rule(config=CONFIG, mode=st.sampled_from(["ok", "ok", "fail", "hang"]))
    def probe_behaves(self, config: str, mode: str) -> None:
        (self.worlds[config].folder / "probe.mode").write_text(mode)
        COUNTS["steps"] += 1

    @rule(
        account=st.sampled_from(["do", "hz"]),
        kind=st.sampled_from(["no owner", "other owner", "alpha", "beta", "renamed"]),
    )
    def hand_made_server(self, account: str, kind: str) -> None:
        """A server made by hand that looks like a drill server: the drill mark without an
        owner, with another owner's, with ours (not journaled); or a drill server a run left
        renamed by hand. None of them may ever be deleted."""
        state = self.sandbox.state
        if kind == "renamed":
            with state.lock:
                left = sorted(
                    i
                    for i in self.sandbox.made
                    if i in state.servers and i not in self.servers.hand
                )
                if not left:
                    return
                server = state.servers[left[0]]
                server.name = f"{server.name}-kept"
                self.servers.hand.add(server.id)
            COUNTS["drill servers renamed by hand"] += 1
            COUNTS["steps"] += 1
            return
        owner = {"no owner": None, "other owner": "gamma"}.get(kind, kind)
        # named as a drill would name it, at a second no run has
        stamp = self.now - timedelta(minutes=53, seconds=17)
        name = f"drill-{'web' if account == 'do' else 'app'}-{min(SERVERS[account])}-"
        name += f"{stamp:%Y%m%d%H%M%S}"
        if account == "do":
            marks = {"tags": [DRILL_TAG] + ([OWNER_TAG + owner] if owner else [])}
        else:
            labels = {"managed-by": "snapshot-policy", DRILL_LABEL: "true"}
            marks = {"labels": labels | ({"snapshot-policy/owner": owner} if owner else {})}
        with state.lock:
            made = state.add_server(account, name, id=self.next_hand_id, **marks)
        self.next_hand_id += 1
        self.servers.hand.add(made.id)
        COUNTS["drill look-alike servers made by hand"] += 1
        COUNTS["steps"] += 1

    # -- a run ---------------------------------------------------------------------------

    @rule(config=CONFIG, later=LATER)
    def run(self, config: str, later: int) -> None:
        self._run(config, later, [], None, ("start", 0.0))

    @rule(config=CONFIG, later=LATER, shifts=st.lists(SHIFT, min_size=1, max_size=2))
    def run_while_listings_shift(self, config: str, later: int, shifts: list[dict]) -> None:
        self._run(config, later, shifts, None, ("start", 0.0))

    @rule(config=CONFIG, later=DUE, shifts=st.lists(SHIFT, max_size=1), when=WHEN)
    def run_stopped(
        self, config: str, later: int, shifts: list[dict], when: tuple[str, float]
    ) -> None:
        """SIGTERM at a random moment: `execute.Stop` set from another thread (`Interrupter`)."""
        self._run(config, later, shifts, "stop", when)

    @rule(config=CONFIG, later=DUE, shifts=st.lists(SHIFT, max_size=1), when=WHEN)
    def run_killed(
        self, config: str, later: int, shifts: list[dict], when: tuple[str, float]
    ) -> None:
        """SIGKILL at a random moment, as the module docstring says."""
        self._run(config, later, shifts, "kill", when)

    @rule(config=CONFIG, later=DRILL_LATER, faults=DRILL_FAULTS)
    def run_while_drills_fail(self, config: str, later: int, faults: list[str]) -> None:
        """apply, its due drills meeting `faults`."""
        self._run(config, later, [], None, ("start", 0.0), faults=faults)

    @rule(
        config=CONFIG,
        later=DRILL_LATER,
        faults=DRILL_FAULTS,
        interruption=st.sampled_from(["stop", "kill", "kill"]),
        when=DRILL_WHEN,
    )
    def run_interrupted_in_a_drill(
        self,
        config: str,
        later: int,
        faults: list[str],
        interruption: str,
        when: tuple[str, float],
    ) -> None:
        """apply, stopped or killed at a moment of its drills."""
        self._run(config, later, [], interruption, when, faults=faults)

    @rule(
        config=CONFIG,
        later=st.sampled_from([0, 0, 1, 6]),
        faults=DRILL_FAULTS,
        interruption=st.sampled_from([None, None, "stop", "kill", "kill"]),
        when=DRILL_WHEN,
    )
    def drill_now(
        self,
        config: str,
        later: int,
        faults: list[str],
        interruption: str | None,
        when: tuple[str, float],
    ) -> None:
        """The `drill` command: every configured drill now, stopped or killed or not."""
        self._run(config, later, [], interruption, when, faults=faults, command="drill")

    @rule(
        config=CONFIG,
        later=LATER_23,
        transfer_fails=st.sampled_from([0, 0, 1, 2]),
        interruption=st.sampled_from([None, "stop", "kill", "kill"]),
        when=WHEN_23,
        power_fault=st.sampled_from([None, None, "ignore_shutdown", "fail_power_on"]),
    )
    def run_while_marking_or_copying(
        self,
        config: str,
        later: int,
        transfer_fails: int,
        interruption: str | None,
        when: tuple[str, float],
        power_fault: str | None,
    ) -> None:
        """apply up to two days later, when beta's marks pending deletion fall due (its soft
        delete) and alpha's copies decide its deletions; `transfer_fails` of its transfers
        failing (the sandbox's `transfer_fail`); stopped or killed while it marks, copies,
        deletes or takes marks off, or while a server consistency: shutdown shut down is
        off; its guest ignoring the shutdown, or a power on failing (`power_fault`)."""
        self._run(
            config,
            later,
            [],
            interruption,
            when,
            transfer_fails=transfer_fails,
            power_fault=power_fault,
        )

    @rule(
        config=CONFIG,
        command=st.sampled_from(["pin", "pin", "unpin", "undelete", "undelete", "garble"]),
        pick=st.integers(0, 99),
        days=st.sampled_from([0, 0, 1, 2, 5]),
    )
    def marks_by_hand(self, config: str, command: str, pick: int, days: int) -> None:
        """`snapshot-policy pin ID --until DATE`, `unpin ID`, `undelete ID` through the CLI
        on a snapshot `config` manages (DATE from the proof's clock, in the target's
        timezone); or a pin or pending-delete mark whose day cannot be read, put on by hand.
        The command changes that snapshot's marks only, and audits what it did."""
        world = self.worlds[config]
        before = all_snapshots(self.sandbox.dump_state())
        ours = sorted(
            (s for s in before.values() if self._manages(config, s)), key=lambda s: str(s["id"])
        )
        wanted = {"unpin": pin_of, "undelete": pending_of}.get(command)
        if wanted:  # one it applies to, else any: the command refuses it, changing nothing
            ours = [s for s in ours if wanted(s) is not None] or ours
        COUNTS["steps"] += 1
        if not ours:
            return
        snapshot = ours[pick % len(ours)]
        if command == "garble":
            self._garble(snapshot, pick % 2 == 0)
            return
        argv = [command, "--policy", str(world.folder / "policy.yaml"), str(snapshot["id"])]
        if command == "pin":
            until = self._today(config, snapshot) + timedelta(days=days)
            argv += ["--until", until.isoformat(), "--note", "proof"]
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(argv, clock=lambda: self.now)
        said = (out.getvalue() + err.getvalue()).strip()
        assert code in (0, 1), f"{' '.join(argv)}: exit {code}: {said}"
        assert "Traceback" not in said, said
        COUNTS[f"{command} by hand: {'done' if code == 0 else 'refused'}"] += 1
        after = all_snapshots(self.sandbox.dump_state())
        changed = sorted(
            (i for i in before if i in after and marks_of(before[i]) != marks_of(after[i])),
            key=str,
        )
        assert set(changed) <= {snapshot["id"]}, f"{' '.join(argv)} changed {changed}"
        if code == 0:
            event = {"pin": "pinned", "unpin": "unpinned", "undelete": "undeleted"}[command]
            assert any(
                line["event"] == event and sid(line["snapshot_id"]) == snapshot["id"]
                for line in map(json.loads, _lines(world.audit_file))
            ), f"{' '.join(argv)}: not audited: {said}"

    @rule(
        server=st.sampled_from([("do", 101), ("do", 102), ("hz", 201), ("hz", 202)]),
        value=st.sampled_from(["1", "2", "4", "0", "abc", None]),
    )
    def override_changes(self, server: tuple[str, int], value: str | None) -> None:
        """Someone sets a server's keep_last override (Hetzner label, DigitalOcean tag) to
        another value, one that does not parse (that server fails, its neighbours run), or
        takes it off."""
        account, server_id = server
        state = self.sandbox.state
        with state.lock:
            found = state.servers[server_id]
            if account == "hz":
                found.labels.pop("snapshot-policy/keep-last", None)
                if value is not None:
                    found.labels["snapshot-policy/keep-last"] = value
            else:
                tags = [t for t in found.tags if not t.startswith("snapshot-policy:keep-last:")]
                found.tags = tags + ([f"snapshot-policy:keep-last:{value}"] if value else [])
        COUNTS["steps"] += 1
        COUNTS["override changed by hand"] += 1

    @rule(server=TARGET_SERVER, off=st.booleans())
    def power_by_hand(self, server: tuple[str, int], off: bool) -> None:
        """Someone powers a target's server off (a run must leave it off: it did not shut it
        down) or on again."""
        _, server_id = server
        state = self.sandbox.state
        with state.lock:
            state.advance()
            found = state.servers[server_id]
            if found.status not in ("running", "off") or state.running_action(server_id):
                return
            found.status = "off" if off else "running"
        if off:
            self.hand_off.add(server_id)
        else:
            self.hand_off.discard(server_id)
        COUNTS["steps"] += 1
        COUNTS[f"server powered {'off' if off else 'on'} by hand"] += 1

    def _manages(self, config: str, snapshot: dict) -> bool:
        """A snapshot of a server (or volume) of `config`'s targets, with our marker and no
        other owner's: one `pin` may touch."""
        return (
            (config, snapshot["account"], snapshot["server_id"]) in self.zones
            and is_marked(snapshot)
            and not owners(snapshot) - {config}
        )

    def _garble(self, snapshot: dict, pin: bool) -> None:
        """A pin or pending-delete mark whose day cannot be read: a pin that keeps; a pending
        mark that is none (§5.16)."""
        state = self.sandbox.state
        with state.lock:
            if snapshot.get("volume"):
                found = state.volume_snapshots.get(snapshot["id"])
            else:
                found = state.snapshots.get(snapshot["id"])
            if found is None:
                return
            if snapshot["account"] == "hz":
                found.labels[PIN_LABEL if pin else PENDING_LABEL] = "soon"
            else:
                tag = (PIN_TAG if pin else PENDING_TAG) + "soon"
                found.tags = [*found.tags, state.register_tag(state.accounts["do"], tag)]
        COUNTS[f"unreadable {'pin' if pin else 'pending-delete'} mark by hand"] += 1

    def _drill_faults(self, faults: list[str]) -> None:
        for fault in faults:
            for service, create, delete in (
                ("digitalocean", r"^/v2/droplets$", r"^/v2/droplets/\d+$"),
                ("hetzner", r"^/v1/servers$", r"^/v1/servers/\d+$"),
            ):
                if fault == "lose create":
                    self.sandbox.inject(
                        "lose_reply", service=service, method="POST", path=create, count=1
                    )
                elif fault == "boot fail":
                    self.sandbox.inject("boot_fail", service=service, count=1)
                elif fault == "slow boot":
                    self.sandbox.inject("slow_boot", service=service, seconds=SLOW_BOOT, count=1)
                else:
                    self.sandbox.inject(
                        "error", service=service, method="DELETE", path=delete, count=1
                    )
            COUNTS[f"drill fault: {fault}"] += 1

    def _run(
        self,
        config: str,
        later: int,
        shifts: list[dict],
        interruption: str | None,
        when: tuple[str, float],
        faults: list[str] = (),
        command: str = "apply",
        transfer_fails: int = 0,
        power_fault: str | None = None,
    ) -> None:
        """One run of `config` (`command`: apply or drill), `later` hours after the last step,
        while `shifts` shift its listings and `faults` meet its drills, interrupted
        (`interruption`) `when` something happens."""
        self._set_clock(self.now + timedelta(hours=later))
        world = self.worlds[config]
        start = self.sandbox.dump_state()
        inputs = {path: _read(path) for path in (world.journal_file, world.state_file)}
        for shift in shifts:
            self._shift(shift, start)
        start = self.sandbox.dump_state()  # as others left it
        self.sandbox.state.clock = lambda: world.now
        self.sandbox.clear_requests()
        self._drill_faults(list(faults))
        if power_fault:
            self.sandbox.inject(power_fault, count=1)
            COUNTS[f"power fault: {power_fault}"] += 1
        if transfer_fails:
            self.sandbox.inject("transfer_fail", service="digitalocean", count=transfer_fails)
            COUNTS["transfer faults"] += transfer_fails
        self.sandbox.running = (config, len(self.runs) + 1, world.journal_file)
        stop = Stop()
        cut: dict[Path, bytes | None] = {}

        def interrupt() -> None:
            if interruption == "kill":
                for service in ("digitalocean", "hetzner"):
                    self.sandbox.inject("drop", service=service, count=None)
                (world.folder / "dead").touch()
                # winds the dead run down: nothing it does reaches a cloud or a file
                stop.set("SIGKILL")
                cut.update(consistent_cut([world.audit_file, world.state_file, world.journal_file]))
            else:
                stop.set("SIGTERM")

        interrupter = Interrupter(self.sandbox, world, *when, interrupt) if interruption else None
        if interrupter:
            interrupter.start()
        try:
            if command == "drill":
                plan, report = world.drill(stop=stop)
                drilled = report.drills if report else ()
                requests = self.sandbox.requests()
                withheld = False
            else:
                result = world.run(stop=stop)
                drilled, requests = result.report.drills, result.requests
                withheld = bool(result.observation.withheld)
                COUNTS["targets planned with a per-server override"] += sum(
                    bool(p.target.rule_sources) for p in result.plan.targets
                )
        finally:
            self.sandbox.running = None
            if interrupter:
                interrupter.finish()
            COUNTS["shifts that fired"] += sum(
                f["kind"] == "shift" and f["fired"] > 0 for f in self.sandbox.faults.list()
            )
            self.sandbox.clear_faults()
        interrupted = interruption if interrupter is not None and interrupter.fired else None
        if interrupted == "kill":
            for path, content in cut.items():
                _write(path, content)
            (world.folder / "dead").unlink()
        world.settle()
        record = RunRecord(config, interrupted, command)
        self.runs.append(record)
        powered = self._check_power(config, interrupted, start, command)
        if command == "apply":  # the drill command owes and runs no hooks
            self.killed[config] = interrupted == "kill"
        try:
            assert not powered, powered
            self._after_run(world, config, record, start, inputs, requests)
            self._after_drills(world, config, interrupted, "delete fails" in faults)
        except AssertionError as error:
            raise AssertionError(
                f"run {len(self.runs)} ({command} of {config} at {self.now:%Y-%m-%d %H:%M}Z, "
                f"{interrupted or 'not interrupted'} {when if interruption else ''}, "
                f"shifts {shifts}, drill faults {faults}, transfers failing {transfer_fails}): "
                f"{error}"
            ) from None
        COUNTS["steps"] += 1
        COUNTS["runs"] += 1
        COUNTS[f"{command} runs"] += 1
        COUNTS[
            {None: "runs to the end", "stop": "runs stopped", "kill": "runs killed"}[interrupted]
        ] += 1
        if withheld:
            COUNTS["runs with deletions withheld"] += 1
        for result in drilled:
            COUNTS["drills passed" if result.passed else f"drills failed at {result.stage}"] += 1

    def _after_drills(
        self, world: World, config: str, interrupted: str | None, delete_fault: bool
    ) -> None:
        """The drill server checks after a run (`DrillServers`)."""
        self.servers.check_deletions()
        if interrupted is None:
            self.servers.check_none_left(config, len(self.runs), own_too=not delete_fault)
        if interrupted != "kill":
            self.servers.check_audit(config, world)

    def _shift(self, shift: dict, start: dict) -> None:
        """Inject one `shift` fault: inserts and deletions near the page boundary of the listing."""
        account, listing = shift["account"], shift["listing"]
        if shift["aim"] is not None and listing == "snapshots":
            self._move_the_page_boundary(account, shift["aim"], shift["off"])
            start = self.sandbox.dump_state()
        items = sorted(
            (s for s in start[listing] if s["account"] == account),
            key=lambda s: s["id"],
            reverse=account == "hz",
        )
        delete = []
        for offset in shift["delete"]:
            position = PAGE[account] - 1 + offset
            if not 0 <= position < len(items):
                continue
            item = items[position]
            if listing == "servers" and item["id"] in SERVERS[account]:
                continue  # a target's server stays
            if listing == "snapshots" and is_marked(item) and not shift["ours_too"]:
                continue
            delete.append(item["id"])
        server_id = {
            None: None,
            "noise": NOISE_SERVER[account][0],
            "target": min(SERVERS[account]),
        }[shift["owner"]]
        options = {"ids": list(FRONT)} if shift["front"] and account == "do" else {}
        service = "digitalocean" if account == "do" else "hetzner"
        self.sandbox.inject(
            "shift",
            service=service,
            method="GET",
            path=LISTINGS[(account, listing)],
            page=shift["page"],
            count=shift["count"],
            insert=shift["insert"],
            delete=delete,
            resource=listing,
            server_id=server_id if listing == "snapshots" else None,
            **options,
        )
        COUNTS["shifts"] += 1

    def _after_run(
        self,
        world: World,
        config: str,
        record: RunRecord,
        start: dict,
        inputs: dict,
        requests: list[dict],
    ) -> None:
        before = all_snapshots(start)
        after = all_snapshots(self.sandbox.dump_state())
        removed = set()
        for request in requests:
            found = DELETE.match(request["path"]) if request["method"] == "DELETE" else None
            if found:
                snapshot_id = sid(found.group(1) or found.group(2))
                self.sent[config].add(snapshot_id)
                if request["status"] is not None and 200 <= request["status"] < 300:
                    removed.add(snapshot_id)
        self.removed[config] |= removed
        COUNTS["deleted"] += len(removed)
        run = len(self.runs)
        for snapshot_id in set(before) - set(after) - removed:
            self.slots.gone_by_others[snapshot_id] = run
        check_deletions(
            config,
            removed,
            before,
            self.manual,
            lambda: self._consistent_plan(config, start, inputs),
        )
        uncopied, self.sandbox.uncopied[:] = list(self.sandbox.uncopied), []
        assert not uncopied, "; ".join(uncopied)
        self._check_marks(world, config, record, before, after, removed)
        for snapshot_id in sorted(set(after) - set(before), key=str):
            snapshot = after[snapshot_id]
            if snapshot["name"].startswith("shifted-"):
                self.manual.add(snapshot_id)
                continue
            server = (snapshot["account"], snapshot["server_id"])
            self.slots.add(
                Creation(config, server, snapshot_id, created(snapshot), snapshot["name"]), run
            )
            COUNTS["created"] += 1
        if record.command == "apply":  # the drill command runs no hooks, owed ones neither
            runs = [r for r in self.runs[:-1] if r.config == config and r.command == "apply"]
            after_kill = any(r.interruption == "kill" for r in runs[-1:])
            self.hooks[config].take(
                bool(record.interruption) or after_kill, after_kill or record.interruption == "kill"
            )
            if record.interruption != "kill":
                self.hooks[config].settled()
        if record.interruption != "kill":
            check_audit(world, self.sent[config], self.removed[config])

    def _check_power(
        self, config: str, interrupted: str | None, start: dict, command: str
    ) -> str | None:
        """docs/promises.md §5.17 after a run of `config`: no power off without `force`; after
        an apply not killed (stopped too: it powers on before it ends), every server a run of
        `config` shut down (this one, or a killed one before it) is running again; a
        server that was off before the run and that `config` owed nothing is left off."""
        offs, self.sandbox.power_offs[:] = list(self.sandbox.power_offs), []
        if offs:
            return "; ".join(offs)
        owed = self.sandbox.shut[config]
        with self.sandbox.state.lock:
            self.sandbox.state.advance()
            status = {i: s.status for i, s in self.sandbox.state.servers.items()}
        was_off = {
            s["id"]
            for s in start["servers"]
            if s.get("status") == "off" and s["id"] in self.hand_off
        }
        woken = sorted(i for i in was_off if status.get(i) == "running" and i not in owed)
        if woken:
            return f"{config} powered on servers that were off before its run: {woken}"
        if interrupted == "kill" or command != "apply":
            return None
        left = sorted(i for i in owed if status.get(i) != "running")
        if left:
            return f"servers {config} shut down are not running after its run: {left}"
        COUNTS["servers shut down, running after a completed run"] += len(owed)
        if self.killed[config]:  # the last apply of `config` was killed
            COUNTS["servers shut down, running after the run after a kill"] += len(owed)
        owed.clear()
        return None

    def _today(self, config: str, snapshot: dict) -> date:
        """The run's day in the timezone of the target `config` covers the snapshot by."""
        zone = self.zones.get((config, snapshot["account"], snapshot["server_id"]), timezone.utc)
        return self.now.astimezone(zone).date()

    def _check_marks(
        self,
        world: World,
        config: str,
        record: RunRecord,
        before: dict,
        after: dict,
        removed: set,
    ) -> None:
        """docs/promises.md §5.16 after a run of `config`: no snapshot deleted whose pin held
        at the run's time (in its target's timezone), nor marked pending deletion; under soft
        delete, every deletion of a snapshot whose pending-delete mark's day had come; marks
        written only on this configuration's snapshots (never a hand-made one or another's),
        pending ones only under soft delete, each audited (unless the run was killed)."""
        for snapshot_id in sorted(removed, key=str):
            snapshot = before[snapshot_id]
            today, name = self._today(config, snapshot), f"{snapshot['name']} ({snapshot_id})"
            assert not pin_holds(snapshot, today), (
                f"deleted {name}, pinned until {pin_of(snapshot)} (today {today})"
            )
            if config in SOFT:
                pending = pending_of(snapshot)
                assert pending is not None and pending is not GARBLED and pending <= today, (
                    f"deleted {name} under soft delete, its pending-delete mark "
                    f"{'unreadable' if pending is GARBLED else pending} (today {today})"
                )
                COUNTS["deleted once the mark was due"] += 1
        marked = set()
        for snapshot_id in sorted(set(before) & set(after), key=str):
            was, now = before[snapshot_id], after[snapshot_id]
            if marks_of(was) == marks_of(now):
                continue
            name = f"{was['name']} ({snapshot_id})"
            assert snapshot_id not in self.manual, f"{config} changed the marks of hand-made {name}"
            foreign = owners(was) - {config}
            assert not foreign, f"{config} changed the marks of {name}, {sorted(foreign)}'s"
            pending = pending_of(now)
            if pending is None or pending is GARBLED or pending == pending_of(was):
                COUNTS["marks taken off"] += pending is None and pending_of(was) is not None
                continue
            assert config in SOFT, f"{config} marked {name} pending deletion without soft_delete"
            today = self._today(config, was)
            assert not pin_holds(was, today), (
                f"{config} marked {name} pending deletion, pinned until {pin_of(was)} "
                f"(today {today})"
            )
            marked.add(snapshot_id)
            COUNTS["marked pending deletion"] += 1
        if record.interruption != "kill" and marked:
            audited = {
                sid(line["snapshot_id"])
                for line in map(json.loads, _lines(world.audit_file))
                if line["event"] == "marked pending deletion"
            }
            unaudited = sorted(marked - audited, key=str)
            assert not unaudited, f"marked pending deletion, but not audited: {unaudited}"

    def _consistent_plan(self, config: str, start: dict, inputs: dict) -> Plan:
        """The plan `config` makes from the cloud as it was when the run began (no shift yet),
        with the journal and run state the run began with, read without faults."""
        self.mirror.load_state(start)
        mirror = self.mirrors[config]
        for path, content in inputs.items():
            _write(mirror.folder / path.name, content)
        mirror.now = self.worlds[config].now
        return mirror.plan()

    # -- after every step ----------------------------------------------------------------

    @invariant()
    def nothing_owed_but_to_a_killed_run(self) -> None:
        for config, hooks in self.hooks.items():
            if not self.killed[config]:
                hooks.settled()

    @invariant()
    def one_owner_a_snapshot(self) -> None:
        """The tool marks what it made with its own owner only, never what another made."""
        with self.sandbox.state.lock:
            snapshots = [
                (s.id, s.name, s.tags, s.labels, s.account)
                for s in self.sandbox.state.snapshots.values()
            ]
        for snapshot_id, name, tags, labels, account in snapshots:
            marks = owners(
                {
                    "id": snapshot_id,
                    "name": name,
                    "tags": tags,
                    "labels": labels,
                    "account": account,
                }
            )
            assert len(marks) <= 1, f"{name} ({snapshot_id}) is marked as made by {sorted(marks)}"


def check_deletions(
    config: str, removed: set[int], before: dict[int, dict], manual: set[int], consistent
) -> None:
    """The snapshots `config`'s run removed: each one the run began with, not hand-made, not
    protected, not another configuration's, and deleted by a plan of a consistent view."""
    if not removed:
        return
    plan = consistent()
    verdicts = {
        a.snapshot.id: (a, p)
        for p in plan.targets
        for a in p.actions
        if a.kind is not ActionKind.CREATE
    }
    for snapshot_id in sorted(removed, key=str):
        snapshot = before.get(snapshot_id)
        assert snapshot is not None, (
            f"deleted {snapshot_id}, which did not exist when the run began"
        )
        name = f"{snapshot['name']} ({snapshot_id})"
        assert snapshot_id not in manual, f"deleted the hand-made, unmarked snapshot {name}"
        assert not snapshot.get("protected"), f"deleted the protected snapshot {name}"
        foreign = owners(snapshot) - {config}
        assert not foreign, f"deleted {name}, a snapshot of configuration {sorted(foreign)}"
        action, target_plan = verdicts.get(str(snapshot_id), (None, None))
        assert action is not None, f"deleted {name}, which a consistent plan does not list"
        refused = action.kind is ActionKind.SKIP and action.reason in (
            target_plan.refusal,
            target_plan.withheld,
        )
        assert action.kind is ActionKind.DELETE or refused, (
            f"deleted {name}, which a plan of a consistent view keeps: {action.kind.value}, "
            f"{action.reason}"
        )


def check_audit(world: World, sent: set[int], removed: set[int]) -> None:
    """Each snapshot the configuration's DELETE removed is audited `deleted` once (or its
    deletion still waits in the journal for the next run to see it gone); nothing is audited
    twice, and nothing it sent no DELETE for."""
    lines = (
        [json.loads(line) for line in world.audit_file.read_text().splitlines()]
        if world.audit_file.exists()
        else []
    )
    reasons: dict[int, list[str]] = defaultdict(list)
    for line in lines:
        if line["event"] == "deleted":
            reasons[sid(line["snapshot_id"])].append(line["reason"])
    twice = sorted((i for i, said in reasons.items() if len(said) > 1), key=str)
    assert not twice, f"deletions audited more than once: {twice}"
    journal = json.loads(world.journal_file.read_text()) if world.journal_file.exists() else []
    waiting = {sid(e["deleting"]) for e in journal if "deleting" in e}
    unaudited = sorted(removed - set(reasons) - waiting, key=str)
    assert not unaudited, f"deleted but never audited: {unaudited}"
    invented = sorted(set(reasons) - sent, key=str)
    assert not invented, f"audited as deleted, but no DELETE was sent for them: {invented}"


def consistent_cut(paths: list[Path]) -> dict[Path, bytes | None]:
    """The files as they were at one moment while others write them: the audit log only
    grows and the others are replaced whole, so a read of all that the audit log's and the
    run state's second read confirms is one moment's."""
    while True:
        first = {path: _read(path) for path in paths}
        again = {path: _read(path) for path in paths[:-1]}
        audit = first[paths[0]] or b""
        if all(first[p] == again[p] for p in again) and (not audit or audit.endswith(b"\n")):
            return first


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _write(path: Path, content: bytes | None) -> None:
    if content is None:
        path.unlink(missing_ok=True)
    else:
        path.write_bytes(content)
