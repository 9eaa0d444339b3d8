"""Pins and soft deletion (issue 23, item 2) through the real SDKs against the sandbox: a
snapshot read by id, its labels or tags set and taken off, Hetzner's delete protection set
and lifted (docs/promises.md §5.16)."""

from __future__ import annotations

import pytest

from snapshot_policy.core.model import DIGITALOCEAN, HETZNER, Account, ProviderError
from snapshot_policy.edges.providers import connect
from snapshot_policy.edges.providers.retry import RetryPolicy
from tests.integration.conftest import DO_TOKEN, HZ_TOKEN
from tests.integration.test_providers import BOTH, TIMING, create, create_args, requests_to


@pytest.fixture
def adapter(sandbox):
    def make(provider: str):
        endpoint = (
            sandbox.digitalocean_endpoint if provider == DIGITALOCEAN else sandbox.hetzner_endpoint
        )
        token = DO_TOKEN if provider == DIGITALOCEAN else HZ_TOKEN
        account = Account("main", provider, token, endpoint)
        return connect(account, TIMING, RetryPolicy(sleep=lambda s: None, jitter=lambda: 0.5))

    return make


@BOTH
def test_labels_are_added_and_taken_off_and_read_back_by_id(sandbox, adapter, provider):
    api = adapter(provider)
    made = create(api, *create_args(provider))
    if provider == DIGITALOCEAN:
        add, gone = {"snapshot-policy-pinned-until-2027-01-31": ""}, "snapshot-policy"
    else:
        add, gone = {"snapshot-policy/pinned-until": "2027-01-31"}, "snapshot-policy/target"
    api.set_snapshot_labels(made.id, add, [])
    read = api.get_snapshot(made.id)
    assert read is not None and read.id == made.id and set(add) <= set(read.labels)
    assert gone in read.labels
    api.set_snapshot_labels(made.id, {}, [*add, gone])
    after = api.get_snapshot(made.id)
    assert not (set(add) | {gone}) & set(after.labels)
    # the rest of our marks stay
    assert len(after.labels) == len(read.labels) - 2
    # a tag never made is not on it: asked to take it off, nothing fails
    api.set_snapshot_labels(made.id, {}, ["snapshot-policy-pending-delete-2020-01-01"])


@BOTH
def test_a_missing_snapshot_reads_as_none(adapter, provider):
    assert adapter(provider).get_snapshot("987654") is None
    assert adapter(provider).get_snapshot("not-a-number") is None


def test_hetzner_protection_is_set_and_lifted_and_a_protected_image_refuses_delete(
    sandbox, adapter
):
    api = adapter(HETZNER)
    made = create(api, *create_args(HETZNER))
    api.protect_snapshot(made.id, True)
    assert api.get_snapshot(made.id).protected
    with pytest.raises(ProviderError) as raised:
        api.delete_snapshot(made.id)
    assert raised.value.status == 423 and raised.value.code == "protected"
    posted = requests_to(sandbox, HETZNER, "POST", "/actions/change_protection")
    assert len(posted) == 1
    api.protect_snapshot(made.id, False)
    assert not api.get_snapshot(made.id).protected
    api.delete_snapshot(made.id)
    assert api.get_snapshot(made.id) is None


def test_digitalocean_has_no_protection_and_says_so(adapter):
    api = adapter(DIGITALOCEAN)
    with pytest.raises(ProviderError, match="no delete protection"):
        api.protect_snapshot("1", True)


def test_a_hetzner_image_read_back_without_labels_is_not_rewritten(sandbox, adapter):
    """`PUT /images/{id}` replaces every label: merged into a reply that lost them, our marks
    (managed-by, owner) would be wiped and the snapshot left to whoever claims it."""
    api = adapter(HETZNER)
    made = create(api, *create_args(HETZNER))
    before = dict(api.get_snapshot(made.id).labels)
    sandbox.faults.add(
        "patch",
        service="hetzner",
        method="GET",
        path=rf"^/v1/images/{made.id}$",
        count=2,
        patch={"image": {"labels": None}},
    )
    with pytest.raises(ProviderError, match="without its labels"):
        api.set_snapshot_labels(made.id, {"snapshot-policy/pending-delete": "2027-01-31"}, [])
    with pytest.raises(ProviderError, match="without its labels"):
        api.mark_snapshot(made.id, {"snapshot-policy/owner": "alpha"})
    assert api.get_snapshot(made.id).labels == before
