"""Reading a paginated listing a few pages at a time, each item once, and knowing whether the
listing held still while it was read.

Both clouds say on every page how many there are (Hetzner's `meta.pagination`, DigitalOcean's
`meta.total`), so once the first page is in, the next few can be asked for at once: an account
of 40,000 Hetzner snapshots is 800 pages of 50, and one after another they take 800 round
trips. The adapters hand `read_all` a function reading one page (each under their own guard,
so a failing page is the same ProviderError as before); it asks for at most `PAGE_READERS`
pages at a time and takes them in page order, following each page's word on what comes next
exactly as reading one page at a time would:

- the listing ends at the first page that names no next one (pages read ahead are dropped);
- a page that names another next page than the following one is followed there (what was
  read ahead is dropped);
- past the last page announced, a page that still names a next one is followed, alone, and
  a newer announcement of the last page starts reading ahead again;
- the first page in page order whose read raises ends the listing with that exception; no
  further page is asked for (those already on their way are waited for and dropped).

Pages are offsets into a list that others change while it is read: an item added before the
read position pushes the last item of a page onto the next one as well, an item removed
there pulls one past the reader. So each item is taken once (by its key), and a read is
*steady* only when no key came twice, every page announced the same count and the same last
page, and the distinct items are as many as announced. A read that is not steady is done
again from page 1, up to `READS` times in all; the last one's items are returned, marked
unsettled.

What a steady read proves depends on where the listing puts new items. Where they come first
(Hetzner, asked for `id:desc`), an addition before the read position shifts the rest one
later, a removal there one earlier: each unbalanced shift shows (a key twice, or another
count), and a balanced pair leaves every later page as it was — the items are the set of one
moment. Where they come last, a removal before the read position balanced by an addition at
the end keeps the count and skips one item unseen; DigitalOcean, which offers no order, has
its droplets' own `snapshot_ids` as the second view that finds it (core/orphans.listed_completely).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

PAGE_READERS = 4
"""Pages of one listing asked for at the same time: enough to keep a connection busy while the
previous replies are parsed, few enough to stay a small client."""

READS = 3
"""Reads of a listing that changes while it is read, the first included, before it is
returned unsettled."""

Page = tuple[list[T], int | None, int | None, int | None]
"""One page read: its items, the number of the next page (None: this is the last), the
number of the last page and the number of items in all, each if the reply says (else None)."""


@dataclass(frozen=True)
class Listing(Generic[T]):
    """A whole listing: each item once, in page order, and whether a read of it was steady."""

    items: list[T]
    settled: bool
    reads: int


def read_all(
    read: Callable[[int], Page[T]], key: Callable[[T], Hashable], readers: int | None = None
) -> Listing[T]:
    """Return the listing `read` gives page by page, each item once by `key`: the first
    steady read, else the last of READS reads, unsettled. Up to `readers` (default
    PAGE_READERS) pages are read at a time (page 1 in this thread, the others in a pool).
    Raise what `read` raised for the first failing page in page order."""
    for attempt in range(1, READS + 1):
        items, steady = _read_once(read, key, PAGE_READERS if readers is None else readers)
        if steady:
            return Listing(items, True, attempt)
    return Listing(items, False, READS)


def _read_once(
    read: Callable[[int], Page[T]], key: Callable[[T], Hashable], readers: int
) -> tuple[list[T], bool]:
    """One read from page 1: the items, each once, and whether the listing held still."""
    found: list[T] = []
    seen: set[Hashable] = set()
    announced: set[tuple[int | None, int | None]] = set()
    steady = True
    pool: ThreadPoolExecutor | None = None
    ahead: dict[int, Future[Page[T]]] = {}
    page, reply = 1, read(1)
    try:
        while True:
            items, following, said_last, said_total = reply
            last = said_last if type(said_last) is int else None
            total = said_total if type(said_total) is int else None
            announced.add((last, total))
            for item in items:
                identity = key(item)
                if identity in seen:
                    steady = False  # an item pushed onto the next page as well
                else:
                    seen.add(identity)
                    found.append(item)
            if not following:
                counts = {total for _, total in announced}
                steady = steady and len(announced) == 1 and counts in ({None}, {len(found)})
                return found, steady
            if following != page + 1:  # a jump: forget what was read ahead and go on from there
                _drop(ahead)
            if readers > 1 and last is not None and last > following:
                if pool is None:
                    pool = ThreadPoolExecutor(max_workers=readers, thread_name_prefix="page")
                for number in range(following, min(last, following + readers - 1) + 1):
                    if number not in ahead:
                        ahead[number] = pool.submit(read, number)
            future = ahead.pop(following, None)
            page, reply = following, (future.result() if future is not None else read(following))
    finally:
        _drop(ahead)
        if pool is not None:
            pool.shutdown(wait=True)  # replies on their way are waited for, never left running


def _drop(ahead: dict[int, Future]) -> None:
    """Cancel the pages read ahead that have not started, and forget them all."""
    for future in ahead.values():
        future.cancel()
    ahead.clear()
