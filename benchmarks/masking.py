"""Cost of masking one log line (`redaction.redact`, what the log filter runs) by the number
of configured secrets.

Every log record, every write to stdout or stderr and every state file passes through the
masking; a fleet with hundreds of accounts or channels holds hundreds of secrets. For each
count N (default 4, 50, 300, 1,000 random 64-character tokens) this times `redact` on an
ordinary apply line with no secret in it, and on a hook's line showing two pieces of tokens
(the 24-character tail of one, 20 characters of another), and reports the best of
`--repeat` rounds per line.

`--baseline FILE` times the same with another redaction module (for instance the previous
`snapshot_policy/core/redaction.py`, copied aside before a change), in the same run.

    python benchmarks/masking.py
    python benchmarks/masking.py --baseline /tmp/redaction_before.py
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import string
import sys
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from snapshot_policy.core import redaction

PLAIN = (
    "web-17 (web-17.example.com, digitalocean 316444417): "
    "created web-17-20261126030000 (id 123456789), "
    "deleted 2, 6 managed snapshot(s) remain"
)


def tokens(count: int, seed: int = 1) -> tuple[str, ...]:
    pick = random.Random(seed).choice
    alphabet = string.ascii_letters + string.digits
    return tuple("".join(pick(alphabet) for _ in range(64)) for _ in range(count))


def microseconds(module, text: str, secrets: tuple[str, ...], repeat: int) -> float:
    module.redact(text, secrets)  # the masker is built once per set of secrets, not per line
    return (
        min(timeit.repeat(lambda: module.redact(text, secrets), number=300, repeat=repeat))
        / 300
        * 1e6
    )


def load(path: str):
    spec = importlib.util.spec_from_file_location("redaction_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", type=int, nargs="+", default=[4, 50, 300, 1000])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--baseline", help="another redaction.py to time alongside")
    options = parser.parse_args()
    modules = {"current": redaction} | (
        {"baseline": load(options.baseline)} if options.baseline else {}
    )
    print("| secrets | line | " + " | ".join(f"{name} µs" for name in modules) + " |")
    print("|---|---|" + "---|" * len(modules))
    for count in options.counts:
        secrets = tokens(count)
        pieces = f"before hook: {secrets[-1][40:]} and {secrets[0][5:25]}"
        for label, text in (("no secret", PLAIN), ("two pieces", pieces)):
            figures = " | ".join(
                f"{microseconds(module, text, secrets, options.repeat):.1f}"
                for module in modules.values()
            )
            print(f"| {count:,} | {label} | {figures} |")


if __name__ == "__main__":
    main()
