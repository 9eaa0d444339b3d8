"""Reading a paginated listing a few pages at a time, with the result of reading it page by page.

Both clouds say on every page how many there are (Hetzner's `meta.pagination.last_page`,
DigitalOcean's `meta.total`), so once the first page is in, the next few can be asked for at
once: an account of 40,000 Hetzner snapshots is 800 pages of 50, and one after another they
take 800 round trips. The adapters hand `read_all` a function reading one page (each under
their own guard, so a failing page is the same ProviderError as before); it asks for at most
`PAGE_READERS` pages at a time and takes them in page order, following each page's word on
what comes next exactly as reading one page at a time would:

- the listing ends at the first page that names no next one (pages read ahead are dropped);
- a page that names another next page than the following one is followed there (what was
  read ahead is dropped);
- past the last page announced, a page that still names a next one is followed, alone, and
  a newer announcement of the last page starts reading ahead again;
- the first page in page order whose read raises ends the listing with that exception; no
  further page is asked for (those already on their way are waited for and dropped).

So the result and any error are those of the page-by-page loop; only the number of requests
can differ, by at most `PAGE_READERS - 1` pages read ahead of an end or an error.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

PAGE_READERS = 4
"""Pages of one listing asked for at the same time: enough to keep a connection busy while the
previous replies are parsed, few enough to stay a small client."""

Page = tuple[list[T], int | None, int | None]
"""One page read: its items, the number of the next page (None: this is the last), and the
number of the last page if the reply says (None: it does not)."""


def read_all(read: Callable[[int], Page[T]], readers: int | None = None) -> list[T]:
    """Return the items of every page, in page order, starting from page 1 and following each
    page's next one; up to `readers` (default PAGE_READERS) pages are read at a time by
    `read` (page 1 in this thread, the others in a pool). Raise what `read` raised for the
    first failing page in that order."""
    readers = PAGE_READERS if readers is None else readers
    found: list[T] = []
    pool: ThreadPoolExecutor | None = None
    ahead: dict[int, Future[Page[T]]] = {}
    page, reply = 1, read(1)
    try:
        while True:
            items, following, said_last = reply
            found += items
            if not following:
                return found
            if following != page + 1:  # a jump: forget what was read ahead and go on from there
                _drop(ahead)
            last = said_last if type(said_last) is int else None
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
