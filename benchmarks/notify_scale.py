"""Wall time of `notify.deliver` for many messages against the sandbox's Telegram and webhook sink.

    # all cases; about 2 minutes (one chat is paced)
    python benchmarks/notify_scale.py
    # skip the paced one-chat case
    python benchmarks/notify_scale.py --cases chats hooks
    # Telegram's limits lifted: the client's own cost
    python benchmarks/notify_scale.py --unpaced

Cases (`--messages` N, default 100), each one `deliver` call with the real sleep:

- *chats*: N events, each to its own private Telegram chat (one bot). Bounded below by the
  bot's 30 messages a second: about (N / 30 - 1) s.
- *chat*: N events to one private chat, paced at one message a second: about N - 1 s.
- *hooks*: N events, each to its own webhook URL.

It prints wall time, the requests the sandbox served, the TCP connections it accepted and how
many deliveries succeeded. "Before": run this file from a checkout of the earlier commit, e.g.
`git archive HEAD | tar -x -C /tmp/head && cp benchmarks/notify_scale.py /tmp/head/benchmarks/
&& python /tmp/head/benchmarks/notify_scale.py` (it imports the tree it sits in).

The sandbox's listen backlog is raised from socketserver's 5 to `--backlog` (128): with 5, a
burst of 8 new connections loses SYNs and waits a second for their retransmission, which no
real API makes you wait (`--backlog 0` keeps 5).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from http.server import ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from snapshot_policy.core.model import TelegramChannel, WebhookChannel  # noqa: E402
from snapshot_policy.edges.notify import Event, deliver, telegram  # noqa: E402
from snapshot_policy.sandbox import Sandbox  # noqa: E402

BOT_TOKEN = "123456:BENCH-BOT"
EVENT = Event(
    target="web",
    provider="digitalocean",
    server_name="web-1",
    server_id="101",
    snapshot_name="web-1-20250101030000",
    total_snapshots=3,
    status="SUCCESS",
    error=None,
    hostname="bench-host",
    timestamp=datetime(2025, 1, 1, 3, tzinfo=timezone.utc),
)


def routes(case: str, count: int, sandbox: Sandbox) -> list:
    events = [
        replace(EVENT, target=f"t{i:03d}", server_name=f"srv-{i:03d}", server_id=str(1000 + i))
        for i in range(count)
    ]
    if case == "chats":
        return [
            (e, [TelegramChannel(name=f"c{i}", bot_token=BOT_TOKEN, chat_id=str(10_000 + i))])
            for i, e in enumerate(events)
        ]
    if case == "chat":
        return [
            (e, [TelegramChannel(name="one", bot_token=BOT_TOKEN, chat_id="10000")]) for e in events
        ]
    return [
        (e, [WebhookChannel(name=f"h{i}", url=sandbox.webhook_url(f"h{i}"))])
        for i, e in enumerate(events)
    ]


def run(case: str, count: int) -> dict:
    with Sandbox(
        {"telegram": {"bots": [{"token": BOT_TOKEN, "username": "bench_bot"}]}}
    ) as sandbox:
        accepted = []
        server = (
            sandbox._httpd
        )  # the request log has no connections: count them where they are accepted
        process = server.process_request

        def counted(request, client_address):
            accepted.append(client_address)
            process(request, client_address)

        server.process_request = counted
        work = routes(case, count, sandbox)
        started = time.perf_counter()
        deliveries = deliver(work, sandbox.telegram_base_url, lambda: EVENT.timestamp)
        wall = time.perf_counter() - started
        return {
            "wall": wall,
            "requests": len(sandbox.requests()),
            "connections": len(accepted),
            "ok": sum(d.ok for d in deliveries),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cases", nargs="+", choices=["chats", "chat", "hooks"], default=["chats", "chat", "hooks"]
    )
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument(
        "--unpaced",
        action="store_true",
        help="lift Telegram's limits (no effect on code without them)",
    )
    parser.add_argument(
        "--backlog",
        type=int,
        default=128,
        help="the sandbox's listen backlog (0: socketserver's 5)",
    )
    args = parser.parse_args()
    if args.backlog:
        ThreadingHTTPServer.request_queue_size = args.backlog
    if args.unpaced and hasattr(telegram, "BOT_PER_SECOND"):
        telegram.BOT_PER_SECOND, telegram.CHAT_BURST, telegram.GROUP_PER_MINUTE = (
            10**9,
            10**9,
            10**9,
        )
    print(
        f"{'case':<6} {'messages':>8} {'wall s':>8} {'requests':>8} "
        f"{'connections':>11} {'delivered':>9}",
        flush=True,
    )
    for case in args.cases:
        r = run(case, args.messages)
        print(
            f"{case:<6} {args.messages:>8} {r['wall']:>8.2f} {r['requests']:>8} "
            f"{r['connections']:>11} {r['ok']:>9}",
            flush=True,
        )


if __name__ == "__main__":
    main()
