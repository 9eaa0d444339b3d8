"""Which price a GB of snapshots costs a month, and where it came from (docs/promises.md §7).

Pure: the prices of the configuration, the ones the clouds' price lists gave (or why they
could not be read) and the run's clock come in as values. The order, first that holds:

1. `settings.prices` of the policy (an operator's price always wins; nothing is read);
2. the cloud's own price list (Hetzner `GET /v1/pricing`, `image.price_per_gb_month.net`),
   read once per account and kept in the run state for CACHE_FOR by the run's clock;
3. the shipped default, named with the page and the day it was read.

Prices are net of VAT: Hetzner's net prices are the same for every customer while its gross
adds the VAT of the project owner's country, and DigitalOcean's list price is without tax.
Hetzner accounts may be billed in euros or dollars: accounts whose prices differ are priced
each on its own (`price_key`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from snapshot_policy.core.model import DIGITALOCEAN, HETZNER, Price

SETTINGS = "settings.prices"
CACHE_FOR = timedelta(days=1)
DEFAULT_SOURCES = {  # the pages with their addresses: README "Storage and cost"
    DIGITALOCEAN: (
        "the shipped default, net of VAT: DigitalOcean's Snapshots pricing page, read 2026-12-07"
    ),
    HETZNER: (
        "the shipped default, net of VAT: Hetzner's prices from 1 April 2026, read 2026-11-29"
    ),
}
LIVE = {HETZNER: "Hetzner's price list (GET /v1/pricing)"}


def fresh(read: datetime, now: datetime) -> bool:
    """Whether a price read at `read` may still be used at `now`: for CACHE_FOR, and never one
    dated after `now` (a clock that ran ahead would keep it for ever)."""
    return read <= now < read + CACHE_FOR


def live_source(provider: str, accounts: list[str], read: datetime) -> str:
    """`Hetzner's price list (GET /v1/pricing) of account hz, net of VAT, read 2026-12-07
    10:00 UTC`."""
    named = f"account{'s' if len(accounts) > 1 else ''} {', '.join(accounts)}"
    day = read.astimezone(timezone.utc)
    return f"{LIVE[provider]} of {named}, net of VAT, read {day:%Y-%m-%d %H:%M} UTC"


Read = tuple[Price, datetime]
"""A price from a cloud's price list, and when it was read."""


def resolve(
    base: Mapping[str, Price], provider: str, read: Mapping[str, Read | str]
) -> dict[str, Price]:
    """The prices a run shows: `base` (settings or defaults, by provider) with `provider`'s
    replaced by what its accounts' price lists gave (`read`: account -> its price and when
    it was read, or why it could not be read). Settings win: `read` is then ignored.
    Accounts that agree share the provider's price; when they differ, each gets its own
    (`provider/account`). An account whose read failed keeps the fallback, its source saying
    why."""
    prices = dict(base)
    fallback = prices.get(provider)
    if fallback is None or fallback.source == SETTINGS or not read:
        return prices
    got = {a: r for a, r in sorted(read.items()) if not isinstance(r, str)}
    failed = {a: why for a, why in sorted(read.items()) if isinstance(why, str)}
    if failed:
        reasons = "; ".join(f"account {a}: {why}" for a, why in failed.items())
        fallback = replace(
            fallback, source=f"{fallback.source} (the price list could not be read: {reasons})"
        )
    if not got:
        prices[provider] = fallback
        return prices
    if not failed and len({(p.per_gb_month, p.currency) for p, _ in got.values()}) == 1:
        price = next(iter(got.values()))[0]
        oldest = min(when for _, when in got.values())
        prices[provider] = replace(price, source=live_source(provider, list(got), oldest))
        return prices
    for account, (price, when) in got.items():
        prices[f"{provider}/{account}"] = replace(
            price, source=live_source(provider, [account], when)
        )
    for account in failed:
        prices[f"{provider}/{account}"] = fallback
    return prices


def price_key(prices: Mapping[str, Price], provider: str, account: str) -> str:
    """The key of `account`'s price in `prices`: its own when its accounts differ, else the
    provider's."""
    own = f"{provider}/{account}"
    return own if own in prices else provider
