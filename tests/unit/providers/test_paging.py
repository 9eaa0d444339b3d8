"""Reading a listing a few pages at a time gives what reading it page by page gives."""

from __future__ import annotations

import threading

import pytest

from snapshot_policy.edges.providers import paging


def read_all(listing, readers=None) -> list[int]:
    """The items of a listing that holds still (each item is its own key)."""
    result = paging.read_all(listing, lambda item: item, readers)
    assert result.settled and result.reads == 1
    return result.items


def read_unsettled(listing, readers=None) -> list[int]:
    """The items of a listing whose pages disagree, however often it is read."""
    result = paging.read_all(listing, lambda item: item, readers)
    assert not result.settled and result.reads == paging.READS
    return result.items


class Listing:
    """A fake paginated listing: `pages[n]` is page n's (items, next, last, total); records each
    read."""

    def __init__(
        self,
        pages: dict[int, tuple[list[int], int | None, int | None, int | None]],
        failing: dict[int, Exception] | None = None,
    ):
        self.pages = pages
        self.failing = failing or {}
        self.read: list[int] = []
        self.at_once = self.most_at_once = 0
        self._lock = threading.Lock()

    def __call__(self, page: int):
        with self._lock:
            self.read.append(page)
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            if page in self.failing:
                raise self.failing[page]
            return self.pages[page]
        finally:
            with self._lock:
                self.at_once -= 1


def numbered(
    count: int, per_page: int = 3, last: bool = True
) -> dict[int, tuple[list[int], int | None, int | None, int | None]]:
    """`count` pages of `per_page` items numbered from 0, each naming the next and (with `last`)
    the last page and the number of items."""
    return {
        n: (
            list(range((n - 1) * per_page, n * per_page)),
            n + 1 if n < count else None,
            count if last else None,
            count * per_page if last else None,
        )
        for n in range(1, count + 1)
    }


def test_read_all_reads_each_page_once_and_keeps_their_order():
    listing = Listing(numbered(30))
    assert read_all(listing) == list(range(90))
    assert sorted(listing.read) == list(range(1, 31))
    assert listing.most_at_once <= 4


def test_read_all_reads_a_single_page_alone():
    listing = Listing(numbered(1))
    assert read_all(listing) == [0, 1, 2]
    assert listing.read == [1]


def test_read_all_reads_one_page_at_a_time_when_the_replies_do_not_name_the_last():
    listing = Listing(numbered(6, last=False))
    assert read_all(listing) == list(range(18))
    assert listing.read == [1, 2, 3, 4, 5, 6] and listing.most_at_once == 1


def test_read_all_with_one_reader_is_the_page_by_page_loop():
    listing = Listing(numbered(6))
    assert read_all(listing, readers=1) == list(range(18))
    assert listing.read == [1, 2, 3, 4, 5, 6] and listing.most_at_once == 1


def test_read_all_ends_where_a_page_names_no_next_one_even_if_more_were_announced():
    pages = numbered(10)
    pages[4] = (pages[4][0], None, 10, 30)  # the listing shrank while it was read
    listing = Listing(pages)
    assert read_unsettled(listing) == list(range(12))  # fewer than announced: read again, in vain
    assert max(listing.read) <= 4 + 3  # at most the pages read ahead, whose items are dropped


def test_read_all_follows_pages_past_the_announced_last():
    pages = numbered(8)
    for n in (1, 2, 3):
        pages[n] = (pages[n][0], n + 1, 3, 9)  # announced 3 pages, then it grew
    pages[5] = (pages[5][0], 6, 8, 24)  # a later page announces the new last
    listing = Listing(pages)
    assert read_unsettled(listing) == list(range(24))
    assert sorted(listing.read) == sorted(list(range(1, 9)) * paging.READS)


def test_read_all_follows_a_page_that_names_another_next_page():
    pages = numbered(8)
    pages[2] = (pages[2][0], 6, 8, 24)  # skips 3 to 5
    listing = Listing(pages)
    assert read_unsettled(listing) == [
        0,
        1,
        2,
        3,
        4,
        5,
        15,
        16,
        17,
        18,
        19,
        20,
        21,
        22,
        23,
    ]  # fewer than announced


def test_read_all_raises_the_first_failing_page_in_page_order_and_reads_no_further():
    listing = Listing(numbered(50), failing={3: ValueError("page 3"), 4: KeyError("page 4")})
    with pytest.raises(ValueError, match="page 3"):
        read_all(listing)
    assert max(listing.read) <= 3 + 3  # the failing page and at most the pages read ahead of it


def test_read_all_raises_a_failing_first_page_having_read_nothing_else():
    listing = Listing(numbered(5), failing={1: ValueError("page 1")})
    with pytest.raises(ValueError, match="page 1"):
        read_all(listing)
    assert listing.read == [1]
