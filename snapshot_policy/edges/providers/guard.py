"""What both adapters do alike with the drill servers they make (docs/promises.md §5): the
only servers this tool deletes are the drill servers it made and marked.

- `delete_drill_server`: the last check before a DELETE. The server is read again, and the
  DELETE is sent only when the server, as the cloud describes it now, still carries the
  drill mark with this configuration's owner and no other owner's, and still has the name
  the run made it with. A renamed server, or one whose marks were changed or removed, is
  someone's now: it is refused, and nothing is sent.
- `drill_listing`: a listing of drill servers that changed each time it was read is no
  answer (a leftover is crossed off only on a complete one).
- `CreateWatch`: neither cloud's server says that its create failed, its create actions do:
  they are watched until the server runs, so a drill deletes a server that will never boot
  rather than wait for its boot timeout.
- `image_id`, `server_number`: a snapshot or server id that is no number is refused before
  a request is sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from snapshot_policy.core import ownership
from snapshot_policy.core.model import MadeServer, ProviderError, ServerRequest
from snapshot_policy.edges.providers.paging import Listing
from snapshot_policy.edges.providers.retry import Refused

log = logging.getLogger(__name__)

NOT_A_DRILL_SERVER = "not_a_drill_server"
RUNNING, ERROR = "running", "error"
"""An action's status as `CreateWatch` takes it; any other word means it ended well."""


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


def delete_drill_server(
    provider: str,
    server: MadeServer,
    owner: str,
    read: Callable[[str], MadeServer | None],
    delete: Callable[[str], None],
) -> None:
    """Read `server` again (`read` by id: None when it is gone, which is what was asked for)
    and `delete` it by id only if `check_drill_server` passes; else raise its Refused."""
    current = read(server.id)  # its marks and name now; its boot does not matter
    if current is None:
        return
    check_drill_server(provider, server, current, owner)
    delete(server.id)


def drill_listing(provider: str, operation: str, listing: Listing[MadeServer]) -> list[MadeServer]:
    """The drill servers `listing` holds; ProviderError when it changed each time it was
    read: which exist is then not known."""
    if not listing.settled:
        raise ProviderError(
            provider,
            operation,
            None,
            f"the listing of drill servers changed while it was read, each of the "
            f"{listing.reads} times: which exist is not known",
            situation="",
        )
    return listing.items


def image_id(provider: str, operation: str, request: ServerRequest) -> int:
    """The snapshot to make the server from, by its number; anything else is refused before
    a request is sent."""
    if not request.image_id.isdigit():
        message = f"snapshot id {request.image_id!r} is not a number: no server is made from it"
        raise Refused(provider, operation, message, "invalid_image")
    return int(request.image_id)


def server_number(provider: str, operation: str, server_id: str) -> int:
    """A server's id as the number both clouds give; anything else (a journal entry edited
    or garbled) is refused before a request is sent, never raised as a traceback."""
    if not server_id.isdigit():
        message = f"server id {server_id!r} is not a number: no server is read or deleted by it"
        raise Refused(provider, operation, message, "invalid_server_id")
    return int(server_id)


class CreateWatch:
    """The create (and start) actions of the servers an adapter made, by server id, until
    the server runs or its actions end; and the servers whose actions ended in error.

    `statuses` reads the actions' statuses in one batch (RUNNING, ERROR, or a word for ended
    well; an action the cloud no longer has may be left out: it ended). Several drill
    threads create and list at once: the state is behind a lock, the reading is not."""

    def __init__(self, statuses: Callable[[list[int]], Mapping[int, str]]):
        self._statuses = statuses
        self._actions: dict[str, tuple[int, ...]] = {}
        self._failed: set[str] = set()
        self._lock = threading.Lock()

    def watch(self, server_id: str, action_ids: Iterable[int]) -> None:
        with self._lock:
            self._actions[server_id] = tuple(action_ids)

    def forget(self, server_id: str) -> None:
        """The server is deleted: nothing more to watch."""
        with self._lock:
            self._actions.pop(server_id, None)
            self._failed.discard(server_id)

    def marked(self, servers: list[MadeServer]) -> list[MadeServer]:
        """`servers`, each whose create action ended in error as "failed". The actions of
        servers not yet running are read in one batch; once a server runs, or its actions
        ended, it is not asked about again; one whose action failed stays "failed" until it
        runs."""
        with self._lock:
            for server in servers:
                if server.status == "running":
                    self._actions.pop(server.id, None)
            watched = {s.id: self._actions[s.id] for s in servers if s.id in self._actions}
        statuses = self._read(sorted({a for ids in watched.values() for a in ids}))
        with self._lock:
            for server_id, ids in watched.items():
                if statuses is None:
                    break  # unknown: asked again next time
                ended = [statuses.get(a, "gone") for a in ids]
                if ERROR in ended:
                    self._failed.add(server_id)
                if RUNNING not in ended:
                    self._actions.pop(server_id, None)
            failed = {s.id for s in servers if s.id in self._failed and s.status != "running"}
        return [replace(s, status="failed") if s.id in failed else s for s in servers]

    def _read(self, action_ids: list[int]) -> Mapping[int, str] | None:
        """The watched actions' statuses; None when they cannot be read, so they are asked
        again next time: the caller's listing stays good."""
        if not action_ids:
            return {}
        try:
            return self._statuses(action_ids)
        except ProviderError as error:
            log.warning("%s; whether the new servers' creates failed is asked again", error)
            return None
