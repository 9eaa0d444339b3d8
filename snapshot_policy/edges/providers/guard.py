"""The last check before a server is deleted (docs/promises.md §5): the only servers this
tool deletes are the drill servers it made and marked.

The adapters read the server again right before the DELETE and hand both views here; the
DELETE is sent only when the server, as the cloud describes it now, still carries the drill
mark with this configuration's owner and no other owner's, and still has the name the run
made it with. A renamed server, or one whose marks were changed or removed, is someone's
now: it is refused, and nothing is sent.
"""

from __future__ import annotations

from snapshot_policy.core import ownership
from snapshot_policy.core.model import MadeServer
from snapshot_policy.edges.providers.retry import Refused

NOT_A_DRILL_SERVER = "not_a_drill_server"


def check_drill_server(
    provider: str, expected: MadeServer, current: MadeServer, owner: str
) -> None:
    """Raise Refused (code NOT_A_DRILL_SERVER) unless `current` (the server as just read)
    is `expected` and still a drill server of `owner`'s with its name."""
    problems = []
    if current.id != expected.id:
        problems.append(f"the cloud answered for server {current.id}")
    if current.name != expected.name:
        problems.append(f"it is now named {current.name!r}")
    if not ownership.is_drill_server(provider, current.labels, owner):
        problems.append(f"it does not carry the drill mark of owner {owner!r} alone")
    if problems:
        raise Refused(
            provider,
            "delete drill server",
            (
                f"server {expected.id} ({expected.name!r}) is not deleted: "
                + "; ".join(problems)
                + ". This tool deletes only the drill servers it made and marked"
            ),
            NOT_A_DRILL_SERVER,
        )
