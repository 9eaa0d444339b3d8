"""One account's surprise stays that account's (issue 12, item 11), through the CLI.

The sandbox serves Hetzner data its OpenAPI description allows but hcloud does not expect;
the Hetzner account's targets fail with a sentence, the DigitalOcean account's go on.
"""

from __future__ import annotations

import pytest

from snapshot_policy.cli import main
from tests.e2e.policies import policy_yaml

POLICY = policy_yaml(
    {"name": "web", "account": "do", "names": ["web-1"]},
    {"name": "db", "account": "hz", "ids": [4711]},
    defaults={"retention": {"keep_last": 2}},
)


@pytest.fixture
def policy(tmp_path, sandbox, tokens):
    path = tmp_path / "snapshot-policy.yaml"
    path.write_text(POLICY)
    return path


def surprise(sandbox, kind: str) -> str:
    """Make the Hetzner account's server listing surprising; return the error hcloud raises."""
    if kind == "pagination":
        sandbox.inject(
            "patch",
            service="hetzner",
            path="^/v1/servers$",
            count=None,
            patch={"meta": {"pagination": {"total_pages": 1}}},
        )
        return "TypeError"
    sandbox.state.servers[4711].ipv6 = "2a01:4f8:c012:abcd::1"
    return "IndexError"


@pytest.mark.parametrize("kind", ["pagination", "ipv6"])
def test_validate_online_reports_the_surprised_account_and_checks_the_other(
    policy, sandbox, capsys, clock, kind
):
    error = surprise(sandbox, kind)
    assert main(["validate", "--online", "--policy", str(policy)], clock=clock) == 1
    err = capsys.readouterr().err
    assert (
        "db: cannot read account hz: hetzner list servers failed (HTTP 200): "
        f"the API's reply could not be understood ({error}"
    ) in err
    assert "web:" not in err and "Traceback" not in err
    assert any(
        r["account"] == "do" and r["path"] == "/v2/snapshots"
        for r in sandbox.requests("digitalocean")
    )


def test_plan_still_plans_the_other_account(policy, sandbox, capsys, clock):
    surprise(sandbox, "ipv6")
    assert main(["plan", "--policy", str(policy)], clock=clock) == 1
    out = capsys.readouterr().out
    assert "db: FAILED: cannot read account hz: hetzner list servers failed (HTTP 200)" in out
    assert "+ create web-1-" in out
