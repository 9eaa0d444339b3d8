"""Sending messages through apprise (issue 21, item 12) with the retries, pacing and time limits
of the other channels.

apprise's plugins are synchronous (requests, smtplib, …). Each attempt runs in a daemon thread
of its own, awaited with the channel's `timeout`, so a service that never answers holds no
run past its time and no process past its end. Each attempt gets a fresh plugin from the URL:
apprise's own pacing (`request_rate_per_sec`, slept inside a plugin) is done here instead,
through the `sleep` every channel shares, as a burst of BURST messages to one URL and then one
per the plugin's interval.

apprise says why a message failed only in its log. Its logger is taken off every handler for
the run (its lines can quote a URL, a secret), and what it says at WARNING or above during an
attempt, in that attempt's thread, is read for the HTTP status or the kind of failure: the
attempt's error is the service's name and that (`ntfy: error=403`), never apprise's own
words, which name an ntfy topic, a chat or an address as they please. A failure with an HTTP
status of 4xx (408 and 429 aside) is final; any other is retried.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable

from snapshot_policy.core import apprise_loader
from snapshot_policy.edges.notify.messages import CUT_OFF
from snapshot_policy.pacing.backoff import Backoff, WaitRefused, pause
from snapshot_policy.pacing.budget import SlidingWindow

BURST = 3  # messages to one URL at once before the plugin's interval applies, as Telegram's chats
# The HTTP status apprise names, "error=403"; ntfy's own codes add two digits ("error=40301").
_STATUS = re.compile(r"\berror=(\d{3})(?:\d{2})?\b")
_FINAL = frozenset(range(400, 500)) - {408, 429}

SUCCESS, FAILURE = "success", "failure"  # apprise's NotifyType values
# What apprise's log lines say, as the words an attempt's error uses instead of them.
_KINDS = (
    (("connection error", "connection refused", "could not connect"), "Connection error"),
    (("timed out", "timeout"), "no answer in time"),
    (("authentic", "login", "credential"), "authentication failed"),
    (("ssl", "certificate", "tls"), "TLS error"),
)


class Apprise:
    """One run's apprise sender, an async context manager: apprise's logger is ours while it
    is open, and silent after. `sleep` does the pacing waits; `clock` is a monotonic clock in
    seconds."""

    def __init__(
        self, sleep: Callable[[float], object], clock: Callable[[], float] = time.monotonic
    ):
        self._sleep = sleep
        self._clock = clock
        self._windows: dict[str, SlidingWindow] = {}
        self._capture = _Capture()
        self._held: apprise_loader.Held | None = None

    async def __aenter__(self) -> Apprise:
        apprise_loader.load()  # before any thread: warnings filters are process state
        self._held = apprise_loader.hold(self._capture, level=logging.WARNING)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Give apprise's logger its handlers back, but silenced: the thread of an attempt that
        ran out of time may still log (a URL's host, a token in it) after the run is over."""
        if self._held is not None:
            self._held.release(silenced=True)

    async def send(
        self,
        url: str,
        title: str,
        body: str,
        kind: str,
        *,
        timeout: float,
        backoff: Backoff,
        deadline: float | None = None,
    ) -> tuple[int, str | None]:
        """Send `title` and `body` (plain text) to `url` as a `kind` (SUCCESS or FAILURE)
        notification; return (requests made, None) or (requests made, last error).

        Waits first, if need be, for the URL's next free slot. Retried through `backoff`,
        except after a final refusal (4xx). `timeout` bounds each attempt whole, and
        `deadline` (the event loop's time) the whole message, pacing included: then
        (requests made, CUT_OFF). Messages to one URL must be sent one after another.
        """
        requests = 0

        async def attempt() -> None:
            nonlocal requests
            requests += 1
            ok, why = await _in_thread(
                lambda: _notify(url, title, body, kind, timeout, self._capture), timeout
            )
            if not ok:
                raise _Failed(why)

        try:
            async with asyncio.timeout_at(deadline):
                await self._pace(url)
                await backoff.run_async(attempt, retryable=_retryable)
        except TimeoutError:
            return requests, CUT_OFF
        except WaitRefused as too_long:
            return requests, f"{too_long.error}; not waiting {too_long.wait:g} s"
        except (_Failed, _TooSlow) as error:
            return requests, str(error)
        return requests, None

    async def _pace(self, url: str) -> None:
        if url not in self._windows:
            self._windows[url] = SlidingWindow(BURST, BURST * interval(url))
        window = self._windows[url]
        wait = window.wait(self._clock())
        if wait > 0:
            await pause(self._sleep, wait)
        window.add(self._clock())


class _Failed(Exception):
    """apprise reported a failure; `status` is the HTTP status it named, if any."""

    def __init__(self, why: str):
        super().__init__(why)
        found = _STATUS.findall(why)
        self.status = int(found[-1]) if found else None


class _TooSlow(Exception):
    def __init__(self, timeout: float):
        super().__init__(f"no complete answer within {timeout:g}s")


def _retryable(error: Exception) -> bool:
    if isinstance(error, _Failed):
        return error.status not in _FINAL
    return isinstance(error, _TooSlow)


class _Capture(logging.Handler):
    """What apprise logs, kept per thread: an attempt's thread reads its own lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self._lines: dict[int, list[str]] = {}
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = record.getMessage()
        except (TypeError, ValueError):
            line = str(record.msg)
        with self._guard:
            if record.thread in self._lines:
                self._lines[record.thread].append(line.strip())

    def start(self) -> None:
        with self._guard:
            self._lines[threading.get_ident()] = []

    def stop(self) -> list[str]:
        with self._guard:
            return self._lines.pop(threading.get_ident(), [])


def _notify(
    url: str, title: str, body: str, kind: str, timeout: float, capture: _Capture
) -> tuple[bool, str]:
    """One attempt, in its own thread: (sent, what apprise said if not). apprise is loaded:
    `Apprise.__aenter__` loaded it (warnings filters are not for threads to change)."""
    apprise, _ = apprise_loader.load()
    capture.start()
    plugin = None
    try:
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin is None:
            return False, "apprise cannot read the URL (validate names the key)"
        plugin.socket_connect_timeout = plugin.socket_read_timeout = timeout
        sent = plugin.notify(
            body=body or title,
            title=title if body else "",
            notify_type=apprise.NotifyType(kind),
            body_format=apprise.NotifyFormat.TEXT,
        )
    except Exception as error:  # a plugin's bug must not end the run; its text may hold the URL
        return False, f"{_service(plugin)}: {type(error).__name__}"
    finally:
        said = capture.stop()
    return bool(sent), _reason(_service(plugin), said)


def _service(plugin: object) -> str:
    """The plugin's service name (`ntfy`, `E-Mail`, `JSON`): a class attribute, no secret."""
    name = getattr(type(plugin), "service_name", None) if plugin is not None else None
    return name if isinstance(name, str) and name else "apprise"


def _reason(service: str, said: list[str]) -> str:
    """Why apprise did not send, from its log lines, in words of ours: the HTTP status it named,
    or the kind of failure. Its lines themselves name the topic, chat or address it sent to."""
    text = " ".join(said)
    found = _STATUS.findall(text)
    if found:
        return f"{service}: error={found[-1]}"
    lowered = text.lower()
    for words, what in _KINDS:
        if any(word in lowered for word in words):
            return f"{service}: {what}"
    return f"{service}: the service did not take the message"


def interval(url: str) -> float:
    """The plugin's own least interval between two requests (apprise's `request_rate_per_sec`,
    in seconds); 0 when the URL cannot be read, or apprise not loaded (then sending says why).
    Never raises: `deliver` asks it before sending, where nothing may end the run."""
    try:
        apprise, _ = apprise_loader.load()
        with apprise_loader.quiet():
            plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        return max(0.0, float(getattr(plugin, "request_rate_per_sec", 0) or 0))
    except Exception:  # ImportError, or a plugin's quirk
        return 0.0


async def _in_thread(work: Callable[[], tuple[bool, str]], timeout: float) -> tuple[bool, str]:
    """Run `work` in a daemon thread; its result, or _TooSlow after `timeout` seconds (the
    thread is left to end on its own sockets' timeouts; it keeps no process alive)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[bool, str]] = loop.create_future()

    def settle(result: tuple[bool, str]) -> None:
        if not done.done():
            done.set_result(result)

    def run() -> None:
        try:
            result = work()
        except BaseException as error:  # noqa: BLE001 -- reported, never raised in a thread
            result = (False, f"apprise: {type(error).__name__}")  # its text may quote the URL
        try:
            loop.call_soon_threadsafe(settle, result)
        except RuntimeError:  # the run's loop is gone: nobody waits for this any more
            pass

    threading.Thread(target=run, name="apprise-attempt", daemon=True).start()
    try:
        async with asyncio.timeout(timeout):
            return await asyncio.shield(done)
    except TimeoutError:
        raise _TooSlow(timeout) from None
