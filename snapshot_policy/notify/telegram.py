"""Sending one Telegram message through python-telegram-bot, with the retries its `Bot` lacks.

PTB is async-only; each request runs in its own `asyncio.run`, so no event loop outlives a
call or crosses threads. `getMe` is never called: a message costs one request, and a wrong
token shows up as the sendMessage refusal. The bot token is part of every request URL, so
nothing here logs or returns a URL, and a base URL that is not https (plain http only to
this machine, `transport`) is refused before the token is put on it.
"""

from __future__ import annotations

import asyncio
import warnings
from datetime import timedelta

from telegram import Bot
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from snapshot_policy import transport
from snapshot_policy.backoff import Backoff, WaitRefused


def send(
    token: str,
    chat_id: str,
    text: str,
    parse_mode: str | None,
    plain: str,
    *,
    base_url: str,
    timeout: float,
    backoff: Backoff,
) -> tuple[int, str | None]:
    """Send `text` to `chat_id`; return (requests made, None) or (requests made, last error).

    Retried through `backoff` on network errors, timeouts, 5xx and flood control, where
    Telegram's `retry_after` is the advised wait (refused, ending the delivery, when the
    policy finds it too long). When Telegram "can't parse entities", `plain` is sent at once
    without a parse mode, and from then on (not counted as a retry). Other refusals (bad
    request, forbidden, invalid token) are final. `timeout` applies to each request. A
    `base_url` that `transport` refuses is not contacted: (0, why).
    """
    refused = transport.url_problem(base_url, transport.BOT_TOKEN)
    if refused is not None:
        return 0, refused
    requests = 0
    message = (text, parse_mode)

    def attempt() -> None:
        nonlocal requests, message
        requests += 1
        try:
            asyncio.run(_post(token, chat_id, *message, base_url, timeout))
        except BadRequest as error:
            if message[1] is None or "can't parse entities" not in error.message.lower():
                raise
            message = (plain, None)
            requests += 1
            asyncio.run(_post(token, chat_id, *message, base_url, timeout))

    try:
        backoff.run(attempt, retryable=_retryable, advised=_advised_wait)
    except WaitRefused as too_long:
        return requests, f"{_describe(too_long.error)}; not waiting {too_long.wait:g} s"
    except TelegramError as error:  # Forbidden, InvalidToken, ChatMigrated, or the last failure
        return requests, _describe(error)
    return requests, None


def _retryable(error: Exception) -> bool:
    """Flood control, and network errors, timeouts and 5xx answers (NetworkError) — not a bad
    request, which PTB also makes a NetworkError."""
    return isinstance(error, RetryAfter) or (isinstance(error, NetworkError) and not isinstance(error, BadRequest))


def _advised_wait(error: Exception) -> float | None:
    return _seconds(error) if isinstance(error, RetryAfter) else None


async def _post(token: str, chat_id: str, text: str, parse_mode: str | None, base_url: str, timeout: float) -> None:
    request = HTTPXRequest(
        connection_pool_size=1,
        read_timeout=timeout,
        write_timeout=timeout,
        connect_timeout=timeout,
        pool_timeout=timeout,
    )
    async with request:
        bot = Bot(token, base_url=base_url, request=request, get_updates_request=request)  # one client
        with warnings.catch_warnings():
            # PTB 22 warns about its own int-to-timedelta migration when it builds RetryAfter;
            # _seconds handles both forms.
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            await bot.send_message(chat_id, text, parse_mode=parse_mode)


def _seconds(error: RetryAfter) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def _describe(error: TelegramError) -> str:
    return f"{type(error).__name__}: {error.message}"
