"""Issue 19, item 10: a start journalled while the clock ran 40 days ahead, whose request was
lost, must not block its server for 40 days, nor be reported as a snapshot without an id."""

from __future__ import annotations

import json
from datetime import timedelta

from snapshot_policy.cli import main
from tests.e2e.policies import ACCOUNTS, DB, policy_yaml

POLICY = policy_yaml(
    {**DB, "schedule": {"every": "24h"}},
    accounts={"hz": ACCOUNTS["hz"]},
    defaults=None,
    settings={"lock_file": "run/snapshot-policy.lock", "log": {"file": "logs/snapshot-policy.log"}},
)


def test_a_start_journalled_by_a_clock_that_ran_ahead_blocks_nothing_and_is_crossed_off_once(
    tmp_path, sandbox, tokens, monkeypatch, capsys, clock
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policy.yaml").write_text(POLICY)
    (tmp_path / "run").mkdir()
    ahead = clock() + timedelta(days=40)
    journal = tmp_path / "run" / "snapshot-policy.journal.json"
    journal.write_text(
        json.dumps(
            [
                {
                    "account": "hz",
                    "server_id": "4711",
                    "name": f"db-1-{ahead:%Y%m%d%H%M%S}",
                    "started": ahead.isoformat(),
                }
            ]
        )
    )
    journal.chmod(0o600)
    before = {s["id"] for s in sandbox.dump_state()["snapshots"]}

    assert main(["apply", "--policy", "policy.yaml"], clock=clock) == 0
    out, err = capsys.readouterr()
    made = [s for s in sandbox.dump_state()["snapshots"] if s["id"] not in before]
    assert [s["server_id"] for s in made] == [4711]  # not held back as "still being created"
    assert "clock skew" not in out + err and "()" not in out
    assert json.loads(journal.read_text()) == []  # settled: crossed off, not left to warn every run
    log = (tmp_path / "logs" / "snapshot-policy.log").read_text()
    assert (
        log.count("dated after this run's clock") == 1
        and log.count("by a clock that ran ahead") == 1
    )

    clock.advance(hours=25)
    assert main(["apply", "--policy", "policy.yaml"], clock=clock) == 0
    log = (tmp_path / "logs" / "snapshot-policy.log").read_text()
    assert log.count("dated after this run's clock") == 1  # reported once
