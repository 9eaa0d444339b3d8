"""What both adapters share about drill servers (docs/promises.md §5): the check right before
a DELETE (only a server that still carries the drill mark with this owner's mark alone, and
still has its name, passes), and the watch that tells a create that failed."""

from __future__ import annotations

import pytest

from snapshot_policy.core.model import DIGITALOCEAN, HETZNER, MadeServer, ProviderError
from snapshot_policy.core.ownership import drill_server_labels
from snapshot_policy.edges.providers.guard import (
    NOT_A_DRILL_SERVER,
    CreateWatch,
    check_drill_server,
    delete_drill_server,
)
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


def test_a_refused_check_sends_no_delete_and_a_gone_server_needs_none():
    deleted = []
    renamed = server(HETZNER, name="db-1")
    with pytest.raises(Refused):
        delete_drill_server(HETZNER, server(HETZNER), "prod", lambda i: renamed, deleted.append)
    delete_drill_server(HETZNER, server(HETZNER), "prod", lambda i: None, deleted.append)
    assert deleted == []
    delete_drill_server(HETZNER, server(HETZNER), "prod", lambda i: server(HETZNER), deleted.append)
    assert deleted == ["7"]


def test_a_create_action_in_error_marks_its_server_failed_until_it_runs():
    answers = [{1: "running", 2: "running"}, ProviderError("hetzner", "get actions", 503, "no")]
    answers += [{1: "success", 2: "error"}]
    asked = []

    def statuses(ids):
        asked.append(ids)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    watch = CreateWatch(statuses)
    watch.watch("7", [1, 2])
    starting = MadeServer("7", "drill-a", "starting")
    assert watch.marked([starting]) == [starting]
    assert watch.marked([starting]) == [starting]  # unreadable: asked again next time
    assert [s.status for s in watch.marked([starting])] == ["failed"]
    assert [s.status for s in watch.marked([starting])] == ["failed"]  # not asked again
    running = MadeServer("7", "drill-a", "running")
    assert watch.marked([running]) == [running]
    assert asked == [[1, 2]] * 3
