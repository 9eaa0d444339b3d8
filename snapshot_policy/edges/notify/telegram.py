"""Sending Telegram messages through python-telegram-bot, with the retries and pacing its `Bot`
lacks.

PTB is async-only. One `Telegram` serves one run's notifications from one event loop: one
`HTTPXRequest` (a pool of `POOL` connections) shared by one `Bot` per token, at most `POOL`
requests in flight, opened once and closed at the end. It keeps to Telegram's documented
limits (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this):
about 30 messages a second per bot, one a second to the same chat (in short bursts), 20 a
minute to the same group or channel. Its caller sends the messages to one chat one after
another, in order; different chats concurrently.

`getMe` is never called: a message costs one request, and a wrong token shows up as the
sendMessage refusal. The bot token is part of every request URL, so nothing here logs or
returns a URL, and a base URL that is not https (plain http only to this machine,
`transport`) is refused before the token is put on it.
"""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from telegram import Bot
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from snapshot_policy.core import transport
from snapshot_policy.edges.notify.messages import CUT_OFF
from snapshot_policy.pacing.backoff import Backoff, WaitRefused, pause
from snapshot_policy.pacing.budget import SlidingWindow

POOL = 8  # connections, and requests in flight at once
BOT_PER_SECOND = 30  # messages a second per bot
# One message a second to one chat on average; Telegram allows short bursts over that, so
# a run's few messages to one chat go at once, and a long run of them keeps the pace.
CHAT_BURST = 3
GROUP_PER_MINUTE = 20  # messages a minute to one group or channel


class Telegram:
    """One run's Telegram client against `base_url`, an async context manager; the connection
    pool opens with the first request made.

    `sleep` does the pacing waits (awaited when it returns an awaitable, see
    `backoff.pause`); `clock` is a monotonic clock in seconds.
    """

    def __init__(
        self,
        base_url: str,
        sleep: Callable[[float], object],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base_url = base_url
        self.refused = transport.url_problem(base_url, transport.BOT_TOKEN)
        self._sleep = sleep
        self._clock = clock
        self._request: HTTPXRequest | None = None
        self._bots: dict[str, Bot] = {}
        self._in_flight = asyncio.Semaphore(POOL)
        self._bot_windows: dict[str, tuple[SlidingWindow, asyncio.Lock]] = {}
        self._chat_windows: dict[tuple[str, str], list[SlidingWindow]] = {}

    async def __aenter__(self) -> Telegram:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._request is not None:
            await self._request.shutdown()

    async def send(
        self,
        token: str,
        chat_id: str,
        text: str,
        parse_mode: str | None,
        plain: str,
        *,
        timeout: float,
        backoff: Backoff,
        deadline: float | None = None,
    ) -> tuple[int, str | None]:
        """Send `text` to `chat_id`; return (requests made, None) or (requests made, last error).

        Waits first, if need be, for the chat's and the bot's next free slot. Retried through
        `backoff` on network errors, timeouts, 5xx and flood control, where Telegram's
        `retry_after` is the advised wait (refused, ending the delivery, when the policy finds
        it too long). When Telegram "can't parse entities", `plain` is sent at once without a
        parse mode, and from then on (not counted as a retry). Other refusals (bad request,
        forbidden, invalid token) are final. `timeout` bounds each request whole, connect to
        last byte (PTB's timeouts bound each read, which a server answering a byte at a time
        never exceeds). At `deadline` (the event loop's time) the message is cut off, whatever
        it is doing, pacing included: (requests made, CUT_OFF). A base URL that `transport`
        refuses is not contacted: (0, why). Messages to one chat must be sent one after
        another (the pacing of a chat assumes it).
        """
        if self.refused is not None:
            return 0, self.refused
        requests = 0
        message = (text, parse_mode)

        async def attempt() -> None:
            nonlocal requests, message
            requests += 1
            bot = self._bot(token)
            try:
                await self._post(bot, chat_id, *message, timeout)
            except BadRequest as error:
                if message[1] is None or "can't parse entities" not in error.message.lower():
                    raise
                message = (plain, None)
                requests += 1
                await self._post(bot, chat_id, *message, timeout)

        try:
            async with asyncio.timeout_at(deadline):
                await self._pace(token, chat_id)
                await backoff.run_async(attempt, retryable=_retryable, advised=_advised_wait)
        except TimeoutError:
            return requests, CUT_OFF
        except WaitRefused as too_long:
            return requests, f"{_describe(too_long.error)}; not waiting {too_long.wait:g} s"
        except TelegramError as error:  # Forbidden, InvalidToken, ChatMigrated, or the last failure
            return requests, _describe(error)
        return requests, None

    def _bot(self, token: str) -> Bot:
        if self._request is None:  # built with the first request, not for a run that sends none
            self._request = HTTPXRequest(connection_pool_size=POOL)
        if token not in self._bots:
            self._bots[token] = Bot(
                token,
                base_url=self.base_url,
                request=self._request,
                get_updates_request=self._request,
            )
        return self._bots[token]

    async def _post(
        self, bot: Bot, chat_id: str, text: str, parse_mode: str | None, timeout: float
    ) -> None:
        async with self._in_flight:
            try:
                async with asyncio.timeout(timeout):
                    await bot.send_message(
                        chat_id,
                        text,
                        parse_mode=parse_mode,
                        read_timeout=timeout,
                        write_timeout=timeout,
                        connect_timeout=timeout,
                        pool_timeout=timeout,
                    )
            except TimeoutError:
                raise TimedOut(f"no complete answer within {timeout:g}s") from None

    async def _pace(self, token: str, chat_id: str) -> None:
        """Wait until one more message from bot `token` to `chat_id` keeps to the limits, and count
        it."""
        if (token, chat_id) not in self._chat_windows:
            self._chat_windows[token, chat_id] = _chat_limits(chat_id)
        if token not in self._bot_windows:
            self._bot_windows[token] = (SlidingWindow(BOT_PER_SECOND, 1.0), asyncio.Lock())
        chat = self._chat_windows[token, chat_id]
        wait = max(window.wait(self._clock()) for window in chat)
        if wait > 0:
            await pause(self._sleep, wait)
        window, turn = self._bot_windows[token]
        async with turn:  # the bot's slots go in the order they were asked for
            wait = window.wait(self._clock())
            if wait > 0:
                await pause(self._sleep, wait)
            window.add(self._clock())
        now = self._clock()
        for limit in chat:
            limit.add(now)


def _chat_limits(chat_id: str) -> list[SlidingWindow]:
    """One message a second to any chat (bursts of CHAT_BURST); 20 a minute to a group or
    channel (a negative id or an @username)."""
    limits = [SlidingWindow(CHAT_BURST, float(CHAT_BURST))]
    if chat_id.startswith(("-", "@")):
        limits.append(SlidingWindow(GROUP_PER_MINUTE, 60.0))
    return limits


@contextmanager
def quiet() -> Iterator[None]:
    """Silence PTB 22's warning about its own int-to-timedelta migration, which it gives when
    it builds a RetryAfter (`_seconds` handles both forms). Wrap the whole event loop in it:
    `warnings.catch_warnings` is process state, not safe across awaits of concurrent tasks."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        yield


def _retryable(error: Exception) -> bool:
    """Flood control, and network errors, timeouts and 5xx answers (NetworkError) — not a bad
    request, which PTB also makes a NetworkError."""
    return isinstance(error, RetryAfter) or (
        isinstance(error, NetworkError) and not isinstance(error, BadRequest)
    )


def _advised_wait(error: Exception) -> float | None:
    return _seconds(error) if isinstance(error, RetryAfter) else None


def _seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():  # no await inside: safe
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _describe(error: TelegramError) -> str:
    return f"{type(error).__name__}: {error.message}"
