"""observe: one account's surprise stays that account's (SPEC §5)."""

from __future__ import annotations

from snapshot_policy.model import Account, RetentionPolicy, Selector, TargetSpec
from snapshot_policy.observe import observe

BROKEN = Account("broken", "hetzner", "t0ken-broken")


def test_observe_turns_any_exception_of_one_account_into_its_targets_failures():
    """An SDK that raises what it was not meant to (TypeError on an unexpected reply) must not
    end the run or take other accounts' results with it."""

    def connect(account):
        raise TypeError("unexpected keyword argument 'next_cursor'")

    specs = [TargetSpec(name, BROKEN, Selector(ids=("1",)), RetentionPolicy(keep_last=1)) for name in ("a", "b")]
    observation = observe(specs, connect)
    assert [(f.target, f.account, f.reason) for f in observation.failures] == [
        ("a", "broken", "cannot read account broken: unexpected TypeError while reading it"),
        ("b", "broken", "cannot read account broken: unexpected TypeError while reading it"),
    ]
    assert observation.observed == []
