"""The check right before a drill server's DELETE (docs/promises.md §5): only a server that
still carries the drill mark with this owner's mark alone, and still has its name, passes."""

from __future__ import annotations

import pytest

from snapshot_policy.core.model import DIGITALOCEAN, HETZNER, MadeServer
from snapshot_policy.core.ownership import drill_server_labels
from snapshot_policy.edges.providers.guard import NOT_A_DRILL_SERVER, check_drill_server
from snapshot_policy.edges.providers.retry import Refused

BOTH = pytest.mark.parametrize("provider", [DIGITALOCEAN, HETZNER])


def server(provider, name="drill-web-101-20261207030000", owner="prod", **labels):
    marks = drill_server_labels(provider, owner, "web", "9001") if owner else {}
    return MadeServer("7", name, "running", labels={**marks, **labels})


@BOTH
def test_our_own_drill_server_passes(provider):
    check_drill_server(provider, server(provider), server(provider), "prod")


@BOTH
@pytest.mark.parametrize(
    "now, why",
    [
        (lambda p: server(p, owner=None), "does not carry the drill mark"),
        (lambda p: server(p, owner="staging"), "does not carry the drill mark"),
        (lambda p: server(p, name="db-1"), "now named 'db-1'"),
    ],
    ids=["unmarked", "another owner", "renamed"],
)
def test_anything_else_is_refused_naming_why(provider, now, why):
    with pytest.raises(Refused) as raised:
        check_drill_server(provider, server(provider), now(provider), "prod")
    assert raised.value.code == NOT_A_DRILL_SERVER and raised.value.refused
    assert why in str(raised.value) and "deletes only the drill servers it made" in str(
        raised.value
    )


def test_a_second_owners_mark_beside_ours_is_refused():
    both = server(DIGITALOCEAN, **{"snapshot-policy-owner-staging": ""})
    with pytest.raises(Refused):
        check_drill_server(DIGITALOCEAN, server(DIGITALOCEAN), both, "prod")


def test_another_server_in_the_reply_is_refused():
    other = MadeServer("8", server(HETZNER).name, "running", labels=server(HETZNER).labels)
    with pytest.raises(Refused, match="answered for server 8"):
        check_drill_server(HETZNER, server(HETZNER), other, "prod")
