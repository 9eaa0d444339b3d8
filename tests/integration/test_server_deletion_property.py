"""docs/promises.md §5 as a property through the real SDKs: whatever a run believes about a
server (the id, name and marks it hands `delete_drill_server`), the DELETE is sent only for a
server that, as the cloud describes it right then, carries the drill mark with this owner's
mark and no other owner's, and has the name the run made it with. Every other server of a
random fleet still exists afterwards, and no DELETE names it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapshot_policy.core.model import DIGITALOCEAN, HETZNER, Account, MadeServer
from snapshot_policy.edges.providers import connect
from snapshot_policy.edges.providers.retry import Refused, RetryPolicy, Timing
from snapshot_policy.sandbox import Sandbox
from tests.integration.conftest import DO_TOKEN, HZ_TOKEN, seed

OWNER = "prod"
ACCOUNT = {DIGITALOCEAN: "do-a", HETZNER: "hz-a"}
TOKEN = {DIGITALOCEAN: DO_TOKEN, HETZNER: HZ_TOKEN}
NAMES = ["drill-web-101-20261207030000", "drill-db-103-20261207030000", "web-1", "db-1"]

# Marks written out here, not taken from ownership: the oracle must not share the code it checks.
HETZNER_MARKS = {
    "drill": ("snapshot-policy/drill", ["true", "false", None]),
    "managed": ("managed-by", ["snapshot-policy", "someone-else", None]),
    "owner": ("snapshot-policy/owner", [OWNER, "staging", "prod-2", None]),
}
DO_TAGS = [
    "snapshot-policy-drill",
    "Snapshot-Policy-Drill",
    "snapshot-policy-drill-old",
    "snapshot-policy-owner-prod",
    "snapshot-policy-owner-PROD",
    "snapshot-policy-owner-staging",
    "snapshot-policy-owner-prod-2",
    "web",
]


def ours(provider: str, name: str, claimed_name: str, marks: dict[str, str]) -> bool:
    if name != claimed_name:
        return False
    if provider == HETZNER:
        return (
            marks.get("snapshot-policy/drill") == "true"
            and marks.get("managed-by") == "snapshot-policy"
            and marks.get("snapshot-policy/owner") == OWNER
        )
    tags = {tag.lower() for tag in marks}
    owners = {tag for tag in tags if tag.startswith("snapshot-policy-owner-")}
    return "snapshot-policy-drill" in tags and owners == {"snapshot-policy-owner-prod"}


def hetzner_labels():
    marks = [
        st.sampled_from(values).map(lambda value, key=key: {key: value} if value else {})
        for key, values in HETZNER_MARKS.values()
    ]
    extra = st.sampled_from([{}, {"role": "app"}])
    return st.tuples(*marks, extra).map(lambda parts: {k: v for p in parts for k, v in p.items()})


def do_tags():
    return st.lists(st.sampled_from(DO_TAGS), unique_by=str.lower, max_size=4).map(
        lambda tags: {tag: "" for tag in tags}
    )


def fleet(provider: str):
    """Servers as they are (name, marks) and as the run believes them (name, marks): often
    truly ours (fully marked, named as believed), so that both outcomes are common."""
    full = (
        {
            "snapshot-policy/drill": "true",
            "managed-by": "snapshot-policy",
            "snapshot-policy/owner": OWNER,
        }
        if provider == HETZNER
        else {"snapshot-policy-drill": "", "snapshot-policy-owner-prod": ""}
    )
    random_marks = hetzner_labels() if provider == HETZNER else do_tags()
    marks = st.one_of(st.just(full), random_marks)
    server = st.tuples(st.sampled_from(NAMES), marks, st.booleans(), random_marks).map(
        lambda s: (s[0], s[1], s[0] if s[2] else NAMES[(NAMES.index(s[0]) + 1) % 4], s[3])
    )
    return st.lists(server, min_size=1, max_size=6)


@pytest.fixture(scope="module")
def cloud():
    with Sandbox(seed(), action_seconds=0.05) as sandbox:
        yield sandbox


def check(cloud: Sandbox, provider: str, servers) -> None:
    cloud.load_state(seed())
    account = ACCOUNT[provider]
    made = []
    for name, marks, claimed_name, claimed_marks in servers:
        extra = {"labels": marks} if provider == HETZNER else {"tags": list(marks)}
        server = cloud.state.add_server(account, name, **extra)
        claimed = MadeServer(str(server.id), claimed_name, "running", labels=claimed_marks)
        made.append((server.id, ours(provider, name, claimed_name, marks), claimed))
    endpoint = cloud.digitalocean_endpoint if provider == DIGITALOCEAN else cloud.hetzner_endpoint
    api = connect(
        Account("main", provider, TOKEN[provider], endpoint),
        Timing(request_timeout=2, creation_timeout=5, poll_interval=0.02),
        RetryPolicy(sleep=lambda seconds: None, jitter=lambda: 0.5),
    )
    before = set(cloud.state.servers)
    cloud.clear_requests()
    for _, deletable, claimed in made:
        try:
            api.delete_drill_server(claimed, OWNER)
        except Refused as refused:
            assert not deletable and refused.code == "not_a_drill_server"
        else:
            assert deletable
    gone = {server_id for server_id, deletable, _ in made if deletable}
    assert set(cloud.state.servers) == before - gone
    deleted = {
        int(r["path"].rsplit("/", 1)[1])
        for r in cloud.requests(provider)
        if r["method"] == "DELETE"
    }
    assert deleted == gone


PROPERTY = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY
@given(servers=fleet(HETZNER))
def test_hetzner_deletes_only_its_own_drill_servers(cloud, servers):
    check(cloud, HETZNER, servers)


@PROPERTY
@given(servers=fleet(DIGITALOCEAN))
def test_digitalocean_deletes_only_its_own_drill_servers(cloud, servers):
    check(cloud, DIGITALOCEAN, servers)
