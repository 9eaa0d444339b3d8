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
from collections.abc import Callable
from datetime import timedelta

from telegram import Bot
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError
from telegram.request import HTTPXRequest
from telegram.warnings import PTBDeprecationWarning

from snapshot_policy import transport

# A flood-control wait longer than this is not worth holding up a snapshot run for.
MAX_SERVER_WAIT = 60.0


def send(
    token: str,
    chat_id: str,
    text: str,
    parse_mode: str | None,
    plain: str,
    *,
    base_url: str,
    timeout: float,
    retries: int,
    base_delay: float,
    sleep: Callable[[float], None],
) -> tuple[int, str | None]:
    """Send `text` to `chat_id`; return (requests made, None) or (requests made, last error).

    Up to `retries` retries after the first attempt, on network errors, timeouts, 5xx and
    flood control, waiting `base_delay * 2**(n-1)` before retry n, or Telegram's `retry_after`
    when given (giving up instead if that is over MAX_SERVER_WAIT). When Telegram "can't parse entities", `plain` is sent once
    without a parse mode (not counted as a retry). Other refusals (bad request, forbidden,
    invalid token) are final. `timeout` applies to each request. A `base_url` that
    `transport` refuses is not contacted: (0, why).
    """
    refused = transport.url_problem(base_url, transport.BOT_TOKEN)
    if refused is not None:
        return 0, refused
    requests = retry = 0
    while True:
        requests += 1
        try:
            asyncio.run(_post(token, chat_id, text, parse_mode, base_url, timeout))
            return requests, None
        except BadRequest as error:  # before NetworkError, its base class
            if parse_mode is None or "can't parse entities" not in error.message.lower():
                return requests, _describe(error)
            text, parse_mode = plain, None
            continue
        except RetryAfter as error:
            failure, wait = _describe(error), _seconds(error)
        except NetworkError as error:  # includes TimedOut and 5xx answers
            failure, wait = _describe(error), None
        except TelegramError as error:  # Forbidden, InvalidToken, ChatMigrated, ...
            return requests, _describe(error)
        if retry >= retries:
            return requests, failure
        retry += 1
        if wait is None:
            wait = base_delay * 2 ** (retry - 1)
        elif wait > MAX_SERVER_WAIT:
            return requests, f"{failure}; not waiting {wait:g} s"
        sleep(wait)


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
