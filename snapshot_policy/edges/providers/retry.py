"""Repeating calls: reads and deletes when the API says "later", and a start that must not
happen twice.

One policy for both providers, built on the project's one retry loop
(`snapshot_policy.pacing.backoff`, which the notifiers share): the SDKs' own retries are
switched off because both would repeat a snapshot POST after a lost response (pydo on
500/503/504, hcloud on timeouts), which can start a second snapshot; and neither lets tests
replace the clock.

Also what both adapters share about a failed call's meaning: the wait a refusal's headers
ask for (`advised_wait`), and `UncertainOutcome` for a call whose effect cannot be known —
a reply that could not be understood, or a wait that ran out — which is never a refusal.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import TypeVar

from snapshot_policy.core.model import ProviderError
from snapshot_policy.pacing.backoff import MAX_ADVISED_WAIT, Backoff, WaitRefused

log = logging.getLogger(__name__)
T = TypeVar("T")

# The first poll round after a start: a short action is seen done at once.
FIRST_POLL = 0.1
# Error codes of UncertainOutcome.
UNREADABLE = "unreadable_reply"
TIMED_OUT = "timed_out"


class UncertainOutcome(ProviderError):
    """A call whose effect cannot be known: its reply could not be understood (a garbled body,
    data the SDK does not expect, an error without the API's error body), or the wait for it
    ran out. Always transient — the cloud may have acted, or may still act — so a create
    that ends this way is looked for before it is repeated and never taken as refused
    (docs/promises.md §5, invariant 9). `situation` replaces "HTTP nnn" in the message.
    """

    def __init__(
        self,
        provider: str,
        operation: str,
        status: int | None,
        message: str,
        *,
        code: str,
        situation: str,
        request_id: str | None = None,
    ):
        super().__init__(provider, operation, status, message, code=code, request_id=request_id)
        self.situation = situation
        self.args = (str(self),)  # repr and tracebacks say the same

    def __str__(self) -> str:
        failed = f"{self.provider} {self.operation} failed ({self.situation})"
        return f"{failed}: {self.message}{self._request_named}"

    @property
    def transient(self) -> bool:
        return True

    @property
    def refused(self) -> bool:
        return False


def unreadable(
    provider: str,
    operation: str,
    status: int | None,
    cause: BaseException | str,
    request_id: str | None = None,
) -> UncertainOutcome:
    """Return the failure for a reply to `operation` that could not be understood.

    `cause` is the exception reading it raised (logged with its traceback at DEBUG only) or
    a sentence saying what was wrong with it; `request_id` the cloud's name for the request,
    when the reply gave one.
    """
    if isinstance(cause, BaseException):
        log.debug(
            "%s %s: the reply (HTTP %s) could not be understood",
            provider,
            operation,
            status,
            exc_info=cause,
        )
        detail = f"{type(cause).__name__}: {cause}" if str(cause) else type(cause).__name__
    else:
        detail = cause
    if len(detail) > 200:
        detail = detail[:197] + "..."
    if status is None:
        return UncertainOutcome(
            provider,
            operation,
            None,
            f"unexpected {detail}",
            code=UNREADABLE,
            situation="no usable reply",
            request_id=request_id,
        )
    message = f"the API's reply could not be understood ({detail})"
    return UncertainOutcome(
        provider,
        operation,
        status,
        message,
        code=UNREADABLE,
        situation=f"HTTP {status}",
        request_id=request_id,
    )


def timed_out(provider: str, waiting_for: str, timeout: float) -> UncertainOutcome:
    """Return the failure for a snapshot still not finished when its wait ran out: uncertain,
    since it may yet finish (and a later run then finds it)."""
    return UncertainOutcome(
        provider,
        "wait for snapshot",
        None,
        f"{waiting_for} is still not finished",
        code=TIMED_OUT,
        situation=f"timed out after {timeout:g}s",
    )


def advised_wait(headers: Mapping[str, str], spread_over_limit: bool = False) -> float | None:
    """Return the seconds a refused request's headers ask to wait, or None when they do not say.

    `Retry-After` comes first (seconds, or an HTTP date). Else, when the budget is spent
    (`RateLimit-Remaining: 0`), `RateLimit-Reset`. Both dates are on the server's clock, so
    they are measured from the reply's own `Date`, not this machine's clock, which may be
    skewed; without a `Date`, None. DigitalOcean's reset is when its oldest request expires,
    so one request is free again then. Hetzner's (`spread_over_limit`) is when the whole
    budget of `RateLimit-Limit` requests is back, refilled evenly, so one request is free
    after a `limit`-th of that time.
    """
    lower = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    retry_after = lower.get("retry-after", "")
    if retry_after:
        seconds = _number(retry_after)
        if seconds is not None:
            return seconds
        until = _server_seconds_until(_epoch(retry_after), lower)
        return None if until is None else max(0.0, until)
    if lower.get("ratelimit-remaining") != "0":
        return None
    until = _server_seconds_until(_number(lower.get("ratelimit-reset", "")), lower)
    if until is None:
        return None
    if spread_over_limit:
        limit = _number(lower.get("ratelimit-limit", ""))
        if not limit:
            return None
        until /= limit
    return max(0.0, until)


def _number(text: str) -> float | None:
    """A non-negative decimal number of seconds, or None."""
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 and text[:1].isdigit() else None


def _epoch(text: str) -> float | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # "-0000": UTC, origin unknown
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _server_seconds_until(moment: float | None, headers: Mapping[str, str]) -> float | None:
    """Seconds from the reply's `Date` to `moment` (a Unix time), or None if either is missing."""
    sent = _epoch(headers.get("date", ""))
    if moment is None or sent is None:
        return None
    return moment - sent


@dataclass(frozen=True)
class Timing:
    """How long to wait: per HTTP request, for a snapshot to finish, and at most between poll
    rounds (and between asks of a busy server)."""

    request_timeout: float = 60.0
    creation_timeout: float = 3600.0
    poll_interval: float = 15.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, honouring the wait an API asks for (docs/promises.md §8)."""

    attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    jitter: Callable[[], float] = random.random
    clock: Callable[[], float] = time.monotonic

    @property
    def backoff(self) -> Backoff:
        """The shared retry loop with this policy's tries, delays, jitter and sleep, refusing
        advised waits over MAX_ADVISED_WAIT."""
        return Backoff(
            self.attempts,
            self.base_delay,
            self.max_delay,
            self.jitter,
            MAX_ADVISED_WAIT,
            self.sleep,
        )

    def call(self, operation: Callable[[], T]) -> T:
        """Return `operation()`, retrying transient ProviderErrors. Raise the last error.

        A reply that could not be understood is not repeated at once: the same request is
        most likely answered the same way (the API sends data the SDK does not expect).
        Nor is a refusal whose advised wait is over MAX_ADVISED_WAIT.
        """
        try:
            return self.backoff.run(
                operation, retryable=_worth_repeating, advised=_advised, on_retry=self._log_retry
            )
        except WaitRefused as refused:
            raise refused.error from None

    def _log_retry(self, error: Exception, wait: float, retry: int) -> None:
        log.warning(
            "%s; retrying in %.1fs (attempt %d of %d)", error, wait, retry + 1, self.attempts
        )

    def start_once(
        self,
        start: Callable[[], T],
        started_meanwhile: Callable[[], T | None],
        busy: Callable[[ProviderError], bool],
        timeout: float,
    ) -> T:
        """Return `start()` for a call that must not take effect twice, such as a snapshot POST.

        After a transient failure the cloud may have acted and only the reply been lost, so
        `started_meanwhile()` looks first, and only when it finds nothing is `start` repeated,
        until `timeout`. A `busy` refusal (the server is doing something else) raises
        ServerBusy at once: the caller asks again later, holding no request slot meanwhile —
        after a lost reply, only once `started_meanwhile()` has found that the something else
        is not our own snapshot.
        """
        deadline = self.clock() + timeout
        lost: ProviderError | None = None  # the last failure of start() that may have started

        def attempt() -> T:
            nonlocal lost
            try:
                return start()
            except ProviderError as error:
                if busy(error):
                    if lost is not None:  # the server may be busy with our own snapshot
                        found = started_meanwhile()
                        if found is not None:
                            return found
                    raise ServerBusy(error) from None
                if not error.transient:
                    raise
                found = started_meanwhile()
                if found is not None:
                    return found
                lost = error
                raise

        def repeatable(error: Exception) -> bool:
            """Only start()'s own lost reply, in time: a failure to look is final."""
            return error is lost and self.clock() <= deadline

        # A start waits as long as the server advises: no MAX_ADVISED_WAIT here.
        backoff = replace(self.backoff, max_advised_wait=math.inf)
        return backoff.run(attempt, retryable=repeatable, advised=_advised)

    def create_once(
        self,
        create: Callable[[], T],
        made_meanwhile: Callable[[], T | None],
        name_taken: Callable[[ProviderError], bool],
        unique_names: bool,
    ) -> T:
        """Return `create()` for a server POST, which must never make two servers.

        A refusal that is certain to have had no effect and says "later" (a rate limit,
        Hetzner's `conflict`) is repeated as a read is. After a failure that may have acted (a
        server error, a lost or garbled reply) `made_meanwhile()` looks for the server by its
        name first; found, it is the answer. Not found, the create is repeated only where the
        cloud refuses a second server of one name (`unique_names`, Hetzner): a repeat can then
        make no second server, and its `name_taken` refusal sends us looking again. Elsewhere
        (DigitalOcean) the failure is raised: the caller's journal keeps the name, and a later
        listing finds the server if it was made after all. Any other refusal, and a failure to
        look, is raised at once.
        """
        lost: ProviderError | None = None  # the last failure of create() that may have acted
        again: ProviderError | None = None  # the last refusal of create() worth repeating

        def attempt() -> T:
            nonlocal lost, again
            lost = again = None
            try:
                return create()
            except ProviderError as error:
                if name_taken(error):
                    if uncertain_before:
                        found = made_meanwhile()
                        if found is not None:
                            return found
                    raise
                if error.refused:
                    if error.transient:
                        again = error
                    raise
                uncertain_before.append(error)
                found = made_meanwhile()
                if found is not None:
                    return found
                lost = error
                raise

        uncertain_before: list[ProviderError] = []

        def repeatable(error: Exception) -> bool:
            return error is again or (error is lost and unique_names)

        try:
            try:
                return self.backoff.run(attempt, retryable=repeatable, advised=_advised)
            except WaitRefused as refused:
                raise refused.error from None
        except ProviderError as error:
            if uncertain_before and error.refused:  # it speaks for the repeat alone
                raise _still_uncertain(uncertain_before[0], error) from None
            raise


def _still_uncertain(lost: ProviderError, later: ProviderError) -> ProviderError:
    """A create that may have acted (`lost`), then a repeat or a look refused (`later`): no
    certainty that no server exists (the refusal may be the first one's doing: its name
    taken, the server limit reached), so the caller's journal keeps it and looks again."""
    return ProviderError(
        lost.provider,
        lost.operation,
        None,
        f"{lost.message}; then {later.operation} was refused: {later.message}",
        situation="no certain answer",
    )


class Refused(ProviderError):
    """A request this tool refused to send: certain to have had no effect, and final.
    `code` names why (e.g. "not_a_drill_server")."""

    def __init__(self, provider: str, operation: str, message: str, code: str):
        super().__init__(provider, operation, None, message, code=code, situation="refused")

    @property
    def transient(self) -> bool:
        return False

    @property
    def refused(self) -> bool:
        return True


class ServerBusy(ProviderError):
    """A start refused because the server is busy with an action (DigitalOcean's 422,
    Hetzner's `locked`): certain to have had no effect, and worth asking again later."""

    def __init__(self, refusal: ProviderError):
        super().__init__(
            refusal.provider,
            refusal.operation,
            refusal.status,
            refusal.message,
            refusal.retry_after,
            refusal.code,
            refusal.request_id,
        )


def _worth_repeating(error: Exception) -> bool:
    return isinstance(error, ProviderError) and error.transient and error.code != UNREADABLE


def _advised(error: Exception) -> float | None:
    return error.retry_after if isinstance(error, ProviderError) else None
