"""Server and snapshot names that would forge a line or turn the text on a terminal (issue 19,
item 15): plan and apply through the CLI against the sandbox show them escaped everywhere.

A name from a cloud is anyone's text. A line break in it would start a line of its own in
the plan, on stderr or in the log; a bidi override (U+202E) reverses what a terminal shows
after it — the id, the date — and a zero-width space makes two names look alike. Each is
written as an escape (`\\n`, `\\u202e`, `\\u200b`) wherever a name is shown.
"""

from __future__ import annotations

import pytest

from snapshot_policy.cli import main
from snapshot_policy.sandbox import Sandbox
from tests.e2e.cloud import cloud, unwrapped
from tests.e2e.policies import DB as DB_TARGET
from tests.e2e.policies import DEBUG_LOG, policy_yaml
from tests.e2e.policies import WEB as WEB_TARGET

WEB = "web-1\u202egnp.exe\u200b\nFORGED-WEB"
DB = "db-1\u2066x\ufeff\r\nFORGED-DB"
SHOWN = {WEB: "web-1\\u202egnp.exe\\u200b\\nFORGED-WEB", DB: "db-1\\u2066x\\ufeff\\r\\nFORGED-DB"}
RAW = ("\u202e", "\u200b", "\u2066", "\ufeff", "\r")

POLICY = policy_yaml(settings=DEBUG_LOG)


def hostile(now) -> dict:
    """The usual cloud, with web-1 and db-1 (and so their snapshots) renamed."""
    state = cloud(now)
    renamed = {"web-1": WEB, "db-1": DB}
    for server in state["servers"]:
        server["name"] = renamed.get(server["name"], server["name"])
    for snapshot in state["snapshots"]:
        for old, new in renamed.items():
            if snapshot["name"].startswith(old + "-"):
                snapshot["name"] = new + snapshot["name"][len(old) :]
    return state


@pytest.fixture
def sandbox(monkeypatch, clock, tokens, tmp_path):
    with Sandbox(hostile(clock.now), action_seconds=0.05, clock=clock) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(tmp_path)
        (tmp_path / "snapshot-policy.yaml").write_text(POLICY)
        yield sb


def assert_names_escaped(where: str, text: str) -> None:
    """No raw bidi, invisible or carriage-return character, and each name's tail only ever
    right after the escaped head: a name never starts a line of its own."""
    assert not [c for c in RAW if c in text], (
        f"{where} shows {[f'U+{ord(c):04X}' for c in RAW if c in text]} raw"
    )
    for name, shown in SHOWN.items():
        tail = name.rsplit("\n", 1)[1]
        assert text.count(tail) == text.count(shown), (
            f"{where}: {tail} stands apart from its name's escaped form"
        )


def test_plan_and_apply_show_every_hostile_name_escaped_on_stdout_stderr_and_in_the_log(
    sandbox, tmp_path, capsys, clock
):
    assert main(["plan", "--policy", "snapshot-policy.yaml", "-v"], clock=clock) == 0
    plan_out, plan_err = capsys.readouterr()
    assert main(["apply", "--policy", "snapshot-policy.yaml", "-v"], clock=clock) == 0
    apply_out, apply_err = capsys.readouterr()
    log = (tmp_path / "run" / "snapshot-policy.log").read_text(encoding="utf-8")

    places = {
        "plan stdout": plan_out,
        "plan stderr": plan_err,
        "apply stdout": apply_out,
        "apply stderr": apply_err,
        "log": log,
    }
    for where, text in places.items():
        assert_names_escaped(where, text)
    # The names are there, escaped, where each output shows them.
    assert (
        f"web: {SHOWN[WEB]} (digitalocean server 3164444" in plan_out
        and f"+ create {SHOWN[DB]}-" in plan_out
    )
    assert (
        f"web: {SHOWN[WEB]} (digitalocean server 3164444): ok: created {SHOWN[WEB]}-"
        in unwrapped(apply_out)
    )
    assert (
        f"db: {SHOWN[DB]} (hetzner server 4711): creating\n" in apply_err
    )  # a progress line, whole
    assert f"deleted {SHOWN[WEB]}-" in apply_err and f"deleted {SHOWN[DB]}-" in log
    made = [
        s["name"] for s in sandbox.dump_state()["snapshots"] if s["name"].startswith(WEB + "-2")
    ]
    assert len(made) == 3  # the run did its work under those names: one made, keep_last 3


def test_validate_online_shows_a_hostile_name_in_a_failure_escaped(
    sandbox, tmp_path, capsys, clock
):
    db_again = {**DB_TARGET, "name": "db-again"}
    again = policy_yaml(WEB_TARGET, db_again, DB_TARGET, settings=DEBUG_LOG)
    (tmp_path / "snapshot-policy.yaml").write_text(again)
    assert main(["validate", "--online", "snapshot-policy.yaml"], clock=clock) == 1
    err = capsys.readouterr().err
    assert f"server {SHOWN[DB]} (4711) is selected by targets db and db-again" in err
    assert_names_escaped("validate stderr", err)
