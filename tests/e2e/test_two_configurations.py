"""Two configurations covering one server, through the CLI and the real SDKs against the
sandbox (issue 19, item 3): each marks what it makes with its owner and deletes only its own.
A keeps 6, B keeps 2; B's runs never touch A's snapshots."""

from __future__ import annotations

import json

import pytest

from snapshot_policy.cli import main
from snapshot_policy.config.policy import location_owner
from tests.e2e.policies import policy_yaml

SERVERS = {"digitalocean": ("do", 3164444), "hetzner": ("hz", 4711)}


def policy(folder, provider: str, keep: int):
    account, server = SERVERS[provider]
    folder.mkdir()
    path = folder / "snapshot-policy.yaml"
    target = {"name": folder.name, "account": account, "ids": [server]}
    path.write_text(policy_yaml({**target, "retention": {"keep_last": keep}}, defaults=None))
    return path


def marks(snapshot: dict) -> set[str]:
    """The owner a sandbox snapshot carries, as a Hetzner label or a DigitalOcean tag."""
    tags = {
        t.removeprefix("snapshot-policy-owner-")
        for t in snapshot.get("tags", [])
        if t.startswith("snapshot-policy-owner-")
    }
    label = snapshot.get("labels", {}).get("snapshot-policy/owner")
    return tags | ({label} if label else set())


def snapshots_of(sandbox, server_id: int) -> dict[str, set[str]]:
    """{snapshot id: its owners} for every snapshot of the server."""
    return {
        str(s["id"]): marks(s)
        for s in sandbox.dump_state()["snapshots"]
        if s.get("server_id") == server_id
    }


@pytest.mark.parametrize("provider", sorted(SERVERS))
def test_a_second_configuration_never_deletes_the_firsts_snapshots(
    provider, tmp_path, sandbox, tokens, capsys, clock
):
    server = SERVERS[provider][1]
    first, second = (
        policy(tmp_path / "a", provider, keep=6),
        policy(tmp_path / "b", provider, keep=2),
    )
    owner_a, owner_b = location_owner(first), location_owner(second)
    assert owner_a != owner_b
    for _ in range(4):
        assert main(["apply", "--policy", str(first)], clock=clock) == 0
        clock.advance(hours=1)
    made_by_a = {i for i, owners in snapshots_of(sandbox, server).items() if owners == {owner_a}}
    assert len(made_by_a) == 4

    capsys.readouterr()
    assert main(["plan", "--policy", str(second), "--output", "json"], clock=clock) == 0
    planned = json.loads(capsys.readouterr().out)["targets"][0]
    shown = {s["id"]: s["ownership"] for s in planned["skip"]}
    assert all(
        shown[i].startswith(f"another configuration's (owner {owner_a}; this one is {owner_b})")
        for i in made_by_a
    )

    for _ in range(3):
        assert main(["apply", "--policy", str(second)], clock=clock) == 0
        clock.advance(hours=1)
    after = snapshots_of(sandbox, server)
    assert made_by_a <= set(after)  # every one of A's snapshots is still there
    assert sum(owners == {owner_b} for owners in after.values()) == 2  # B kept its last 2 of 3

    # And A, run again, keeps its own 5 and leaves B's alone.
    assert main(["apply", "--policy", str(first)], clock=clock) == 0
    final = snapshots_of(sandbox, server)
    assert sum(owners == {owner_a} for owners in final.values()) == 5
    assert sum(owners == {owner_b} for owners in final.values()) == 2


def test_validate_names_a_token_that_is_not_ascii(
    tmp_path, sandbox, tokens, monkeypatch, capsys, clock
):
    """It passed validate once and then failed every plan with an UnicodeEncodeError."""
    path = policy(tmp_path / "a", "digitalocean", keep=2)
    monkeypatch.setenv("TEST_DO_TOKEN", "dop_v1_abc\u2013def")
    assert main(["validate", "--policy", str(path)], clock=clock) == 1
    err = capsys.readouterr().err
    assert (
        f"{path}:3: accounts.do.token: the value of environment variable TEST_DO_TOKEN "
        "has a character that is not ASCII"
    ) in err
    assert "abc" not in err
