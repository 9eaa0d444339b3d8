"""The prices a plan or status shows: the clouds' price lists, read once a day per account.

Which price wins is core/pricing.py's; this reads what it needs (Hetzner `GET /v1/pricing`,
through the account's adapter) and keeps it in the run state. A price list that cannot be
read never fails a plan: the fallback is shown, and its source says why (docs/promises.md §7).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from snapshot_policy.core import pricing
from snapshot_policy.core.model import HETZNER, Price, ProviderError
from snapshot_policy.edges.providers import Provider
from snapshot_policy.state.runlock import LockHeld, run_lock
from snapshot_policy.state.runstate import ReadPrice, RunState

log = logging.getLogger(__name__)


def current_prices(
    base: Mapping[str, Price],
    providers: Mapping[str, Provider],
    state: RunState,
    now: datetime,
    lock_file: str | None = None,
) -> dict[str, Price]:
    """`base` (settings.prices, else the defaults) with Hetzner's price replaced by its
    accounts' price lists, where no setting fixes it: each account's as the run state kept
    it within pricing.CACHE_FOR of `now`, else read now. New reads are saved into the run
    state when `lock_file` is given (plan) and an apply has made both files, under the run
    lock taken without waiting: while apply holds it, they are not saved (apply writes the
    whole file) and are read again next time. status passes none: it writes nothing."""
    fallback = base.get(HETZNER)
    if fallback is None or fallback.source == pricing.SETTINGS:
        return dict(base)
    read: dict[str, pricing.Read | str] = {}
    new = False
    for account, provider in sorted(providers.items()):
        if provider.name != HETZNER:
            continue
        kept = state.prices.get(account)
        if kept is not None and pricing.fresh(kept.read, now):
            read[account] = (Price(kept.per_gb_month, kept.currency), kept.read)
            continue
        try:
            price = provider.prices()
        except ProviderError as error:
            log.warning("%s: could not read the price list, using the fallback: %s", account, error)
            read[account] = str(error)
            continue
        if price is None:
            continue
        read[account] = (price, now)
        state.record_price(account, ReadPrice(price.per_gb_month, price.currency, now))
        new = True
    if new and lock_file is not None:
        _save(state, lock_file)
    return pricing.resolve(base, HETZNER, read)


def _save(state: RunState, lock_file: str) -> None:
    """Keep the prices read, only in a run state and beside a lock file that an apply made:
    a plan run by another user must not create files that apply (as root, from cron) would
    then refuse as someone else's (docs/promises.md §5.10)."""
    if not (state.exists() and Path(lock_file).exists()):
        log.debug("no run state yet: the prices read are kept once apply has run")
        return
    try:
        with run_lock(lock_file):
            state.save_prices()
    except LockHeld:
        log.info("another run holds the lock: the prices read are not kept this time")
    except OSError as error:  # a cache: the next plan reads the price list again
        log.warning("could not keep the prices read in the run state: %s", error)
