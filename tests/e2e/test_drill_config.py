"""A policy with restore drills and keep_verified, as `validate` checks it (issue 22): a drill
that is configured well passes; a drill key DigitalOcean ignores is warned of with -v, never
an error; a verified-only retention is refused naming the file and the key."""

from __future__ import annotations

from snapshot_policy.cli import main
from tests.e2e.policies import DB, WEB, policy_yaml

DRILLED_DB = {
    **DB,
    "retention": {"keep_last": 2, "keep_verified": 1},
    "drill": {"every": "7d", "probe": ["true"], "networks": [42]},
}


def test_a_policy_with_a_drill_is_valid(tmp_path, tokens, capsys):
    policy = tmp_path / "snapshot-policy.yaml"
    policy.write_text(policy_yaml(WEB, DRILLED_DB, settings={"drills_per_account": 1}))
    assert main(["validate", "--policy", str(policy)]) == 0
    out, err = capsys.readouterr()
    assert out == "1 file(s) valid: 2 target(s).\n"
    assert err == ""


def test_networks_on_a_digitalocean_drill_are_a_warning_shown_with_v(tmp_path, tokens, capsys):
    policy = tmp_path / "snapshot-policy.yaml"
    web = {**WEB, "drill": {"every": "7d", "networks": [42]}}
    policy.write_text(policy_yaml(web, DB))
    assert main(["validate", "-v", "--policy", str(policy)]) == 0
    err = " ".join(capsys.readouterr().err.split())  # fitted to 80 columns
    assert f"warning: {policy}:" in err
    assert "targets[0].drill.networks: networks are Hetzner private networks" in err
    assert main(["validate", "--policy", str(policy)]) == 0
    assert "networks" not in capsys.readouterr().err


def test_keep_verified_alone_is_refused_naming_file_key_and_fix(tmp_path, tokens, capsys):
    policy = tmp_path / "snapshot-policy.yaml"
    db = {**DRILLED_DB, "retention": {"keep_verified": 3}}
    policy.write_text(policy_yaml(WEB, db))
    assert main(["validate", "--policy", str(policy)]) == 1
    err = capsys.readouterr().err
    assert f"{policy}:" in err
    assert "targets[1].retention.keep_verified: keep_verified only adds to the other rules" in err
    assert "e.g. keep_daily: 7" in err
    assert "Traceback" not in err
