"""Run snapshots.py unchanged against the sandbox: `python run_snapshots_py.py SCRIPT SANDBOX_URL
[ARGS...]`.

The old script calls the real APIs through `requests` with fixed base URLs; this runner sends
them to the sandbox instead, by wrapping `requests.Session.request` in this process, and
shortens its `time.sleep` (5 s between polls) to 0.2 s so a recording takes seconds. Nothing
of the script is changed or copied: it runs as `__main__`, from its own folder.
"""

from __future__ import annotations

import runpy
import sys
import time

import requests

REAL_APIS = (
    "https://api.digitalocean.com",
    "https://api.hetzner.cloud",
    "https://api.telegram.org",
)


def main() -> None:
    script, sandbox, *args = sys.argv[1:]
    request = requests.Session.request

    def routed(self: requests.Session, method: str, url: str, *rest: object, **options: object):
        for real in REAL_APIS:
            if url.startswith(real):
                url = sandbox + url[len(real) :]
        self.trust_env = False  # no proxy between it and the sandbox on 127.0.0.1
        return request(self, method, url, *rest, **options)

    requests.Session.request = routed  # type: ignore[method-assign]
    sleep = time.sleep
    time.sleep = lambda seconds: sleep(min(seconds, 0.2))
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
