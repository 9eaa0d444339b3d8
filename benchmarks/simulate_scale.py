"""Wall time of `simulate` over 10 years of hourly runs with a GFS policy (issue 13, item 5).

    python benchmarks/simulate_scale.py              # before (reference) and after, ~20 s
    python benchmarks/simulate_scale.py --days 365   # a shorter span

*before* is `simulate_reference` (the whole reconciler on every run, as `simulate` was);
*after* is `simulate`. The two results are compared and must be equal.
"""

from __future__ import annotations

import argparse
import time
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from snapshot_policy.core.model import RetentionPolicy
from snapshot_policy.core.simulate import simulate, simulate_reference


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=3650)
    parser.add_argument("--runs-per-day", type=int, default=24)
    parser.add_argument("--timezone", default="Europe/Berlin")
    parser.add_argument("--skip-before", action="store_true", help="time only the current simulate")
    args = parser.parse_args()
    policy = RetentionPolicy(
        keep_hourly=24, keep_daily=7, keep_weekly=4, keep_monthly=12, keep_yearly=10
    )
    call = (
        policy,
        ZoneInfo(args.timezone),
        datetime(2026, 1, 1, tzinfo=timezone.utc),
        args.days,
        args.runs_per_day,
    )
    results = {}
    for label, function in (() if args.skip_before else (("before", simulate_reference),)) + (
        ("after", simulate),
    ):
        started = time.perf_counter()
        results[label] = function(*call)
        wall = time.perf_counter() - started
        r = results[label]
        print(
            f"{label:6}  {wall:6.2f} s  {r.created:,} made, {r.deleted:,} deleted, "
            f"{len(r.survivors)} survive",
            flush=True,
        )
    if len(results) == 2 and results["before"] != results["after"]:
        raise SystemExit("the results differ!")


if __name__ == "__main__":
    main()
