"""A listing that changes while its pages are read: each item once, read again, and the set of
one moment when it is called settled (issue 19, item 1)."""

from __future__ import annotations

import threading

from hypothesis import given, settings
from hypothesis import strategies as st

from snapshot_policy.edges.providers import paging


class Shifting:
    """A listing served in pages of offsets into the current items, changed by `changes[n]`
    just before the n-th page read is answered. Ids only grow, as the clouds' do; `newest_first`
    lists them descending (Hetzner asked for `id:desc`), else ascending. `moments` holds every
    set the listing had, in order."""

    def __init__(
        self,
        count: int,
        per_page: int,
        changes: dict[int, list[tuple[str, int]]],
        newest_first: bool = True,
    ):
        self.items = list(range(1, count + 1))
        self.next_id = count + 1
        self.per_page = per_page
        self.changes = changes
        self.newest_first = newest_first
        self.reads = 0
        self.moments = [frozenset(self.items)]
        self._lock = threading.Lock()

    def __call__(self, page: int):
        with self._lock:
            for kind, at in self.changes.get(self.reads, []):
                if kind == "insert":
                    self.items.append(self.next_id)
                    self.next_id += 1
                elif self.items:
                    self.items.pop(at % len(self.items))
                self.moments.append(frozenset(self.items))
            self.reads += 1
            ordered = sorted(self.items, reverse=self.newest_first)
            last = max(1, -(-len(ordered) // self.per_page))
            start = (page - 1) * self.per_page
            return (
                ordered[start : start + self.per_page],
                page + 1 if page < last else None,
                last,
                len(ordered),
            )


def read(listing: Shifting, readers: int = 1) -> paging.Listing[int]:
    return paging.read_all(listing, lambda item: item, readers)


def test_an_item_pushed_onto_the_next_page_is_taken_once_and_the_listing_read_again():
    listing = Shifting(
        9, 3, {1: [("insert", 0)]}
    )  # a new one after page 1: page 1's last comes again
    result = read(listing)
    assert result.settled and result.reads == 2
    assert sorted(result.items) == list(range(1, 11)) and len(result.items) == 10


def test_an_item_pulled_past_the_reader_is_seen_missing_and_the_listing_read_again():
    listing = Shifting(
        9, 3, {1: [("delete", 0)]}, newest_first=False
    )  # page 2's first slides onto page 1
    result = read(listing)
    assert result.settled and result.reads == 2
    assert sorted(result.items) == list(range(2, 10))


def test_a_listing_that_keeps_shifting_is_unsettled_yet_holds_each_item_once():
    listing = Shifting(9, 3, {n: [("insert", 0)] for n in range(100)})
    result = read(listing)
    assert not result.settled and result.reads == paging.READS
    assert len(result.items) == len(set(result.items))


changes = st.dictionaries(
    st.integers(0, 12),
    st.lists(
        st.tuples(st.sampled_from(["insert", "delete"]), st.integers(0, 50)), min_size=1, max_size=3
    ),
    max_size=6,
)


@settings(max_examples=400, deadline=None)
@given(count=st.integers(0, 14), per_page=st.integers(1, 4), changes=changes)
def test_newest_first_a_settled_listing_is_the_set_of_one_moment(count, per_page, changes):
    listing = Shifting(count, per_page, changes)
    result = read(listing)
    assert len(result.items) == len(set(result.items))
    if result.settled:
        assert frozenset(result.items) in listing.moments


@settings(max_examples=200, deadline=None)
@given(
    count=st.integers(0, 14),
    per_page=st.integers(1, 4),
    changes=changes,
    newest_first=st.booleans(),
)
def test_any_order_and_read_ahead_never_give_an_item_twice(count, per_page, changes, newest_first):
    listing = Shifting(count, per_page, changes, newest_first)
    result = read(listing, readers=4)
    assert len(result.items) == len(set(result.items))
    assert set(result.items) <= frozenset().union(*listing.moments)
