"""`snapshot-policy demo`: the whole tool on a fake cloud, offline, in a few seconds
(docs/promises.md §9).

A person who never saw the tool should see, in order: the fleet and its old snapshots, the
policy, the plan with a reason for every decision, apply through the real SDKs, what Telegram
and a webhook were told, a second plan with nothing left to do, what remains, then `status`
and one restore drill with what the fake cloud saw of it (servers made, deleted by id). Every
step goes through the command line's `main`, which the caller hands in (so this module need
not import the CLI that runs it), so the demo shows the commands exactly as a user would run
them."""

from __future__ import annotations

import io
import json
import os
import shlex
import tempfile
import textwrap
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import datetime, timedelta
from pathlib import Path

from snapshot_policy.core.model import Clock
from snapshot_policy.core.ownership import (
    DIGITALOCEAN,
    DIGITALOCEAN_TAG,
    DRILLED_TAG_PREFIX,
    MANAGED_BY_LABEL,
    MANAGED_BY_VALUE,
    SERVER_ID_LABEL,
    drill_result_labels,
)
from snapshot_policy.output.logs import unstamped
from snapshot_policy.sandbox import Sandbox
from snapshot_policy.sandbox.state import format_time

Out = Callable[[str], None]
Main = Callable[..., int]
"""The command line's `main(argv, clock=...)`, returning the exit code."""

# Fake credentials the sandbox accepts; they exist only inside the demo's environment.
TOKENS = {
    "DEMO_DIGITALOCEAN_TOKEN": "sandbox-demo-digitalocean-token",
    "DEMO_HCLOUD_TOKEN": "sandbox-demo-hcloud-token",
    "DEMO_TELEGRAM_BOT_TOKEN": "123456:SANDBOX-DEMO-BOT",
}
CHAT_ID = "-1001234567890"
WEBHOOK_NAME = "ops"

DROPLETS = {3164444: "web-1", 3164445: "web-2"}
HETZNER_SERVERS = {42: "db-1", 43: "db-2"}
# The billed size in GB of a snapshot each server makes today; older ones were a little smaller.
SNAPSHOT_GB = {3164444: 3.6, 3164445: 2.9, 42: 13.1, 43: 8.4}

POLICY = """\
# Two accounts, servers chosen by tag (DigitalOcean) and label (Hetzner),
# one snapshot a day; the web servers' snapshots are restore-tested weekly.
version: 1
accounts:
  do-demo: {{provider: digitalocean, token: env:DEMO_DIGITALOCEAN_TOKEN}}
  hz-demo: {{provider: hetzner, token: env:DEMO_HCLOUD_TOKEN}}
notifications:
  ops-chat:
    type: telegram
    bot_token: env:DEMO_TELEGRAM_BOT_TOKEN
    chat_id: "{chat_id}"
  ops-hook: {{type: webhook, url: "{webhook_url}"}}
defaults:
  schedule: {{every: 24h}}
  notify: [ops-chat, ops-hook]
targets:
  - name: web
    account: do-demo
    label_selector: web              # the DigitalOcean tag
    retention: {{keep_last: 3}}
    drill: {{every: 7d, probe: ["true"]}}   # restore, probe, delete
  - name: databases
    account: hz-demo
    label_selector: "role=db"        # a Hetzner label selector
    retention: {{keep_daily: 3, keep_weekly: 2}}
settings:
  lock_file: snapshot-policy.lock
"""
DRILLED_DAYS_AGO = 2  # the web snapshots' last restore drill, which passed
WIDTH = 80  # columns of every line the demo prints, where the words allow
REPLAY_PORT = 8765  # the sandbox command's default: a kept demo's fake cloud is served there
STATE_FILE = "sandbox-state.json"
ENV_FILE = "demo.env"
SERVERS_PATHS = ("/v2/droplets", "/v1/servers")  # where servers are made, and deleted by id
DRILLED_TARGET = "web"  # the target the demo's policy gives a restore drill


def demo_fleet(now: datetime) -> dict:
    """Return the sandbox state: four servers, each with a few days of snapshots this tool
    made, plus snapshots made by hand and one protected Hetzner image that must survive, each
    with the size it is billed by."""

    def ago(days: float) -> datetime:
        return now - timedelta(days=days)

    def stamp(moment: datetime) -> str:
        return moment.strftime("%Y%m%d%H%M%S")

    def size(server_id: int, days: float) -> float:
        return round(SNAPSHOT_GB[server_id] - 0.05 * days, 2)

    # The web servers' snapshot of two days ago passed a restore drill then (its mark).
    drilled = list(drill_result_labels(DIGITALOCEAN, True, ago(DRILLED_DAYS_AGO).date()))
    snapshots: list[dict] = []
    for server_id, name in DROPLETS.items():
        snapshots += [
            {
                "account": "do-demo",
                "server_id": server_id,
                "name": f"{name}-{stamp(ago(d))}",
                "created": format_time(ago(d)),
                "tags": [DIGITALOCEAN_TAG, *(drilled if d == DRILLED_DAYS_AGO else ())],
                "size_gigabytes": size(server_id, d),
            }
            for d in (1, 2, 3, 4, 5)
        ]
    for server_id, name in HETZNER_SERVERS.items():
        labels = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, SERVER_ID_LABEL: str(server_id)}
        snapshots += [
            {
                "account": "hz-demo",
                "server_id": server_id,
                "name": f"{name}-{stamp(ago(d))}",
                "created": format_time(ago(d)),
                "labels": labels,
                "size_gigabytes": size(server_id, d),
            }
            for d in (1, 2, 3, 4, 9, 16)
        ]
    snapshots += [
        {
            "account": "do-demo",
            "server_id": 3164444,
            "name": "web-1-before-upgrade",
            "created": format_time(ago(30)),
            "size_gigabytes": size(3164444, 30),
        },
        {
            "account": "hz-demo",
            "server_id": 42,
            "name": "db-1 by hand",
            "created": format_time(ago(6)),
            "size_gigabytes": size(42, 6),
        },
        {
            "account": "hz-demo",
            "server_id": 43,
            "name": f"db-2-{stamp(ago(40))}",
            "created": format_time(ago(40)),
            "labels": {MANAGED_BY_LABEL: MANAGED_BY_VALUE, SERVER_ID_LABEL: "43"},
            "protected": True,
            "size_gigabytes": size(43, 40),
        },
    ]
    return {
        "accounts": [
            {
                "name": "do-demo",
                "provider": "digitalocean",
                "tokens": [TOKENS["DEMO_DIGITALOCEAN_TOKEN"]],
            },
            {"name": "hz-demo", "provider": "hetzner", "tokens": [TOKENS["DEMO_HCLOUD_TOKEN"]]},
        ],
        "servers": [
            *[
                {
                    "account": "do-demo",
                    "id": i,
                    "name": n,
                    "tags": ["web"],
                    "created": format_time(ago(400)),
                    "snapshot_size_gigabytes": SNAPSHOT_GB[i],
                }
                for i, n in DROPLETS.items()
            ],
            *[
                {
                    "account": "hz-demo",
                    "id": i,
                    "name": n,
                    "labels": {"role": "db"},
                    "created": format_time(ago(300)),
                    "snapshot_size_gigabytes": SNAPSHOT_GB[i],
                }
                for i, n in HETZNER_SERVERS.items()
            ],
        ],
        "snapshots": snapshots,
        "telegram": {
            "bots": [{"token": TOKENS["DEMO_TELEGRAM_BOT_TOKEN"], "username": "demo_bot"}]
        },
    }


def run_demo(
    main: Main,
    clock: Clock,
    out: Out = print,
    action_seconds: float = 0.3,
    keep: Path | None = None,
) -> int:
    """Run the demo through `main`, telling `out` what happens; return 0 when every step did
    what it should.

    The fake cloud and every command share `clock`: the fleet's old snapshots are dated back
    from it. `os.environ` is the same afterwards: the sandbox's endpoints and the fake tokens
    are set only while the demo runs. `action_seconds` is how long the fake cloud takes per
    snapshot. With `keep` (a folder that does not exist or is empty), the demo works there and
    leaves it, with the fake cloud's final state and the variables to reach it, so the
    commands it showed can be run again (`_replay_text`); else in a temporary folder.
    """
    now = clock().replace(microsecond=0)
    replay = ""
    if keep is not None:
        problem = _unusable(keep)
        if problem:
            out(problem)
            return 1
    with (
        _sandbox(demo_fleet(now), action_seconds, clock, keep is not None) as sandbox,
        _folder(keep) as folder,
    ):
        policy = folder / "snapshot-policy.yaml"
        policy.write_text(
            POLICY.format(chat_id=CHAT_ID, webhook_url=sandbox.webhook_url(WEBHOOK_NAME)),
            encoding="utf-8",
        )
        with _environment({**sandbox.env(), **TOKENS}):
            codes = _walk_through(lambda argv: main(argv, clock=clock), out, sandbox, policy)
        if keep is not None:
            _keep_for_replay(folder, sandbox)
            replay = _replay_text(folder, sandbox_port(sandbox))
    if any(codes.values()):
        said = ", ".join(f"{command} {code}" for command, code in codes.items())
        out("\n" + textwrap.fill(f"The demo did not go as expected (exit codes: {said}).", WIDTH))
        return 1
    out(
        "\nDone. To try it on your own fleet, write a policy (examples in policies/)\n"
        "and run `snapshot-policy plan`."
    )
    if keep is None:
        out(
            "To run the demo's commands again yourself, keep its folder:\n"
            "  snapshot-policy demo --keep snapshot-policy-demo"
        )
    else:
        out(replay)
    return 0


def _unusable(folder: Path) -> str | None:
    """Why `folder` cannot hold a kept demo (it holds something, or is not a folder), or None:
    the demo never writes over files it did not make."""
    if not folder.exists():
        return None
    if not folder.is_dir():
        return f"demo --keep {folder}: not a folder; name a new or empty folder"
    if any(folder.iterdir()):
        return f"demo --keep {folder}: the folder is not empty; name a new or empty folder"
    return None


@contextmanager
def _folder(keep: Path | None) -> Iterator[Path]:
    """The demo's working folder: `keep` (created), else a temporary one removed afterwards."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    with tempfile.TemporaryDirectory(prefix="snapshot-policy-demo-") as folder:
        yield Path(folder)


@contextmanager
def _sandbox(fleet: dict, action_seconds: float, clock: Clock, kept: bool) -> Iterator[Sandbox]:
    """The demo's fake cloud on a free port; for a kept demo on REPLAY_PORT where it is free,
    so the policy's webhook URL still points at the fake cloud when it is served again."""
    sandbox = None
    if kept:
        try:
            sandbox = Sandbox(
                fleet, action_seconds=action_seconds, clock=clock, port=REPLAY_PORT
            ).start()
        except OSError:  # the port is taken: any other will do
            pass
    if sandbox is None:
        sandbox = Sandbox(fleet, action_seconds=action_seconds, clock=clock).start()
    try:
        yield sandbox
    finally:
        sandbox.stop()


def sandbox_port(sandbox: Sandbox) -> int:
    return int(sandbox.url.rsplit(":", 1)[1])


def _keep_for_replay(folder: Path, sandbox: Sandbox) -> None:
    """Leave in `folder` the fake cloud as the demo left it and the variables that reach it
    when `snapshot-policy sandbox` serves it again: the endpoints and the demo's fake tokens
    (valid only in the sandbox), owner-only like any file of tokens."""
    (folder / STATE_FILE).write_text(
        json.dumps(sandbox.dump_state(), indent=2) + "\n", encoding="utf-8"
    )
    lines = [f"export {name}={shlex.quote(value)}" for name, value in sandbox.env().items()]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in TOKENS.items()]
    env_file = folder / ENV_FILE
    descriptor = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write("# The demo's fake cloud and tokens; they work only in the sandbox.\n")
        file.write("\n".join(lines) + "\n")


def _replay_text(folder: Path, port: int) -> str:
    """How to run the demo's commands again on its kept folder."""
    quoted = shlex.quote(str(folder))
    said = textwrap.fill(
        f"The demo's folder is kept in {folder}: the policy, the run's files, the fake cloud "
        f"as the demo left it ({STATE_FILE}) and the variables that reach it ({ENV_FILE}). "
        "To run the commands again, serve that cloud in one terminal:",
        WIDTH,
        break_long_words=False,
        break_on_hyphens=False,
    )
    serve = ["sandbox", "--port", str(port), "--state", f"{folder}/{STATE_FILE}"]
    policy = ["--policy", f"{folder}/snapshot-policy.yaml"]
    again = [["plan", *policy], ["status", *policy], ["drill", *policy, "--target", DRILLED_TARGET]]
    return "\n".join(
        [
            said,
            command_line(serve, "  snapshot-policy"),
            "and in another:",
            f"  . {quoted}/{ENV_FILE}",
            *(command_line(argv, "  snapshot-policy") for argv in again),
        ]
    )


def _walk_through(
    run: Callable[[list[str]], int], out: Out, sandbox: Sandbox, policy: Path
) -> dict[str, int]:
    """Show the fleet, the policy, plan, apply, the notifications, plan again, what is left,
    status and a restore drill; return each command's exit code, in that order."""
    before = {s["id"] for s in sandbox.dump_state()["snapshots"]}
    _heading(
        out,
        1,
        f"A fake cloud runs on {sandbox.url}: two DigitalOcean droplets and two Hetzner servers, "
        f"with older snapshots; a restore drill of the web servers passed {DRILLED_DAYS_AGO} "
        "days ago.",
    )
    _show_state(out, sandbox, before)
    _heading(out, 2, "The policy says what to snapshot, how often, and what to keep.")
    out(f"{policy}:\n{policy.read_text(encoding='utf-8').rstrip()}")
    _heading(
        out,
        3,
        "plan shows what apply would create (+), delete (-), keep (=) or leave alone (!), "
        "and why, and what the snapshots cost a month now and after apply. Nothing changes.",
    )
    planned = _command(run, out, ["plan", "--policy", str(policy)])
    _heading(
        out,
        4,
        "apply makes the due snapshots, waits until they are finished, "
        "then deletes what no rule keeps.",
    )
    applied = _command(run, out, ["apply", "--policy", str(policy)])
    _heading(
        out,
        5,
        "apply told people and machines: "
        "the Telegram messages and webhook payloads the sandbox received.",
    )
    _show_notifications(out, sandbox)
    _heading(
        out,
        6,
        "plan again: the cloud now matches the policy, "
        "so nothing is left to do (exit code 0, not 2).",
    )
    settled = _command(run, out, ["plan", "--policy", str(policy), "--detailed-exitcode"])
    _heading(
        out,
        7,
        "What is left on each server: new = made just now; "
        "manual and protected snapshots were never touched.",
    )
    _show_state(out, sandbox, before)
    _heading(
        out,
        8,
        "status: is each server's newest snapshot on time, and did its last restore drill "
        "pass? Read-only; exit code 2 when something needs a look, so monitoring can run it.",
    )
    status = _command(run, out, ["status", "--policy", str(policy)])
    _heading(
        out,
        9,
        "drill proves the newest snapshots restore: for each web server, a throwaway server is "
        "made from its newest snapshot, run, probed (`true` here; your own check in a real "
        "policy) and deleted, always. The result is marked on the snapshot.",
    )
    seen = len(sandbox.requests())
    tags = _drill_marks(sandbox)
    drilled = _command(run, out, ["drill", "--policy", str(policy), "--target", DRILLED_TARGET])
    _show_drill_traces(out, sandbox, seen, tags)
    return {
        "plan": planned,
        "apply": applied,
        "second plan": settled,
        "status": status,
        "drill": drilled,
    }


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set `values` in os.environ for the block, then put back exactly what was there."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _heading(out: Out, step: int, text: str) -> None:
    out("\n" + textwrap.fill(f"== Step {step}. {text}", WIDTH, subsequent_indent="   ") + "\n")


def command_line(argv: list[str], prompt: str = "$ snapshot-policy") -> str:
    """`$ snapshot-policy ARGS` as a shell reads it, continued with `\\` on a line indented by
    four where it passes WIDTH (a long temporary path), so it can be copied and run."""
    line = prompt
    lines = []
    for word in map(shlex.quote, argv):
        if len(line) + 1 + len(word) + 2 > WIDTH and line != prompt:
            lines.append(line + " \\")
            line = "    " + word
        else:
            line = f"{line} {word}"
    return "\n".join([*lines, line])


def _command(run: Callable[[list[str]], int], out: Out, argv: list[str]) -> int:
    """Run the CLI in-process, show the command line and everything it printed; return its exit
    code."""
    out(command_line(argv))
    printed = io.StringIO()  # both streams in one, so results follow the progress they sum up
    with redirect_stdout(printed), redirect_stderr(printed):
        code = run(argv)
    shown = unstamped(printed.getvalue())  # as at a terminal, where apply prints no times
    if shown.strip():
        out(shown.rstrip())
    out(f"(exit code {code})")
    return code


def _show_notifications(out: Out, sandbox: Sandbox) -> None:
    messages = sandbox.telegram_messages()
    out(f"Telegram, {len(messages)} message(s):")
    for message in messages:
        out(f"  to chat {message['chat_id']}:")
        out("\n".join(f"    | {line}" for line in message["text"].splitlines()))
    deliveries = sandbox.webhook_deliveries(WEBHOOK_NAME)
    out(f"Webhook {WEBHOOK_NAME!r}, {len(deliveries)} payload(s):")
    for delivery in deliveries:
        payload = (
            json.dumps(delivery["json"], indent=2)
            if delivery["json"] is not None
            else delivery["body"]
        )
        out("\n".join(f"    {line}" for line in payload.splitlines()))


def _show_state(out: Out, sandbox: Sandbox, before: set[int]) -> None:
    """Print every server's snapshots, newest first, each with its size and whether this tool
    manages it (the legend says by which marker) or not."""
    state = sandbox.dump_state()
    out(
        textwrap.fill(
            f"managed: marked as this tool's (DigitalOcean tag {DIGITALOCEAN_TAG}, Hetzner "
            f"label {MANAGED_BY_LABEL}={MANAGED_BY_VALUE}); manual: not ours, never deleted.",
            WIDTH,
        )
    )
    for server in state["servers"]:
        own = [s for s in state["snapshots"] if s["server_id"] == server["id"]]
        out(
            f"{server['name']} ({_provider(state, server['account'])} server {server['id']}), "
            f"{len(own)} snapshot(s):"
        )
        for snapshot in sorted(own, key=lambda s: (s["created"], s["id"]), reverse=True):
            marks = _marks(snapshot) + (["new"] if snapshot["id"] not in before else [])
            out(
                f"  {snapshot['created']}  {snapshot['name']:<20} "
                f"{snapshot['size_gigabytes']:>6.2f} GB  {', '.join(marks)}"
            )


def _drill_marks(sandbox: Sandbox) -> dict[int, list[str]]:
    """Each snapshot's drill result tags (DigitalOcean's marks), by snapshot id."""
    return {
        s["id"]: [t for t in s.get("tags", ()) if t.startswith(DRILLED_TAG_PREFIX)]
        for s in sandbox.dump_state()["snapshots"]
    }


def _show_drill_traces(out: Out, sandbox: Sandbox, seen: int, tags: dict[int, list[str]]) -> None:
    """What the fake cloud saw of the drill from request `seen` on: the drill servers made and
    deleted, the servers left (no drill server among them), the results marked on snapshots."""
    requests = sandbox.requests()[seen:]
    made = [r for r in requests if r["method"] == "POST" and r["path"] in SERVERS_PATHS]
    deleted = [
        r
        for r in requests
        if r["method"] == "DELETE" and r["path"].rsplit("/", 1)[0] in SERVERS_PATHS
    ]
    out(f"\nThe fake cloud saw {len(made)} server(s) made and {len(deleted)} deleted by id:")
    for request in made + deleted:
        out(f"  {request['method']:<6} {request['path']} -> {request['status']}")
    state = sandbox.dump_state()
    names = ", ".join(server["name"] for server in state["servers"])
    out(f"Servers now: {names}: no drill server is left.")
    out("Marked on the snapshots the drill restored:")
    for snapshot in state["snapshots"]:
        new = [t for t in snapshot.get("tags", ()) if t.startswith(DRILLED_TAG_PREFIX)]
        for tag in (t for t in new if t not in tags.get(snapshot["id"], ())):
            out(f"  {snapshot['name']}: tag {tag}")


def _provider(state: dict, account: str) -> str:
    return next(a["provider"] for a in state["accounts"] if a["name"] == account)


def _marks(snapshot: dict) -> list[str]:
    """Whether the tool may touch a snapshot, as its marker in the cloud shows."""
    managed = DIGITALOCEAN_TAG in snapshot.get("tags", ()) or (
        snapshot.get("labels", {}).get(MANAGED_BY_LABEL) == MANAGED_BY_VALUE
    )
    return ["managed" if managed else "manual"] + (
        ["protected"] if snapshot.get("protected") else []
    )
