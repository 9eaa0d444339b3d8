"""Notifications (docs/promises.md §7): each target's result to its Telegram chats, webhooks and
apprise URLs (ntfy, e-mail, Slack, …).

Best effort: a notification that fails is logged and reported as a `Delivery`, never raised,
so it cannot change a snapshot's outcome. What is said lives in `messages`, how it travels
in `telegram`, `webhook` and `apprise_send` (which loads apprise only for a run that has an
apprise channel: the command line stays quick).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from snapshot_policy.core.model import (
    AppriseChannel,
    Channel,
    Clock,
    Delivery,
    TelegramChannel,
    WebhookChannel,
)
from snapshot_policy.core.redaction import mask_fields, redact
from snapshot_policy.edges.notify import apprise_send, messages, telegram, webhook
from snapshot_policy.edges.notify.messages import CUT_OFF, SUCCESS, Event
from snapshot_policy.pacing.backoff import Backoff

__all__ = ["CUT_OFF", "Event", "deliver", "time_allowed"]

log = logging.getLogger(__name__)

# A run's notifications together take at most this long (`time_allowed`): the run holds its
# lock meanwhile, and its snapshots are already made. Five minutes keeps an hourly schedule's
# next run well clear; one minute covers a channel with the defaults (4 tries of 10 s, waits
# of 2, 4 and 8 s).
SHORTEST_TIME, LONGEST_TIME = 60.0, 300.0

RequestsAndError = tuple[int, str | None]  # requests made, and the last error or None


def deliver(
    routes: Sequence[tuple[Event, Sequence[Channel]]],
    telegram_base_url: str,
    clock: Clock,
    secrets: Iterable[str] = (),
    sleep: Callable[[float], object] = asyncio.sleep,
    total_time: float | None = None,
) -> list[Delivery]:
    """Send each event to each of its channels and return one Delivery per message, in order.

    `clock` dates each webhook signature, which receivers compare with their own clocks.

    A Telegram or apprise channel with `summary` gets one message covering every event routed
    to it, after the per-event messages; an apprise channel sends each message to each of its
    URLs, one Delivery each. Never raise: a failure becomes `ok=False` with an error
    from which `secrets` and the channel's own secrets are masked, and a WARNING log line.
    A Telegram base URL or webhook URL that is not https (plain http only to this machine,
    `transport`) fails its deliveries with `attempts=0`: nothing is sent.

    The messages to one chat (of one bot) go one after another in that order, so a summary
    comes after the chat's per-event messages, and so do those to one webhook URL; different
    chats and URLs are served concurrently from one event loop, through one Telegram and one
    webhook client, within Telegram's limits (`telegram`). `sleep(seconds)` waits between
    retries and paces messages: awaited when it returns an awaitable (`asyncio.sleep`), else
    taken as done when it returns (a test's recorder). Log lines come in the order above,
    once all is sent.

    Each attempt ends at its channel's `timeout`, connect to last byte, and all the messages
    together end at `total_time` seconds (default `time_allowed`: their channels' schedules and
    each apprise URL's pacing): a message
    still under way then, or not begun, fails with the error CUT_OFF.
    """
    secrets = tuple(secrets)
    jobs = _jobs([(mask_fields(event, secrets), channels) for event, channels in routes])
    outcomes: list[RequestsAndError | None] = [None] * len(jobs)
    if jobs:
        seconds = total_time
        if seconds is None:
            seconds = time_allowed((job.channel for job in jobs), _pacing(jobs))
        sending = _send_all(jobs, outcomes, telegram_base_url, clock, sleep, seconds)
        try:
            with telegram.quiet():
                asyncio.run(sending)
        except Exception as exc:  # a bug, or a caller inside an event loop: what was sent stands
            sending.close()
            outcomes = [(0, f"{type(exc).__name__}: {exc}") if o is None else o for o in outcomes]
    return [_record(job, outcome, secrets) for job, outcome in zip(jobs, outcomes, strict=True)]


@dataclass(frozen=True)
class _Job:
    """One message: about one event, or about several for a summary channel."""

    channel: Channel
    events: tuple[Event, ...]
    url: int = 0  # which of an apprise channel's URLs

    @property
    def target(self) -> str | None:
        return None if _summary(self.channel) else self.events[0].target

    @property
    def queue(self) -> tuple[str, ...]:
        """Messages with the same queue are sent one after another: one bot's to one chat, or to
        one URL."""
        if isinstance(self.channel, TelegramChannel):
            return ("telegram", self.channel.bot_token, self.channel.chat_id)
        if isinstance(self.channel, AppriseChannel):
            return ("apprise", self.channel.urls[self.url])
        return ("webhook", self.channel.url)


def _summary(channel: Channel) -> bool:
    return isinstance(channel, (TelegramChannel, AppriseChannel)) and channel.summary


def _jobs(routes: Sequence[tuple[Event, Sequence[Channel]]]) -> list[_Job]:
    """The messages in delivery order: per event and channel, then one per summary channel."""
    jobs: list[_Job] = []
    summaries: dict[Channel, list[Event]] = {}
    for event, channels in routes:
        for channel in channels:
            if _summary(channel):
                summaries.setdefault(channel, []).append(event)
            else:
                jobs += [_Job(channel, (event,), url) for url in _urls(channel)]
    return jobs + [
        _Job(channel, tuple(events), url)
        for channel, events in summaries.items()
        for url in _urls(channel)
    ]


def _urls(channel: Channel) -> range:
    """The indexes of an apprise channel's URLs; one message (index 0) for the others."""
    return range(len(channel.urls)) if isinstance(channel, AppriseChannel) else range(1)


def time_allowed(channels: Iterable[Channel], paced: Iterable[float] = ()) -> float:
    """How long a run's messages to `channels` may take together: as long as the slowest channel's
    own schedule for one message (every try taking its whole timeout, and the backoff's waits
    between them; a receiver's advised waits are not foreseen), plus the longest of `paced`
    (per queue of messages, the waits its service's pace asks: `_pacing`), within SHORTEST_TIME
    and LONGEST_TIME. A larger fleet's per-target messages to a slow-paced service (ntfy, e-mail:
    one per 5.5 s) are then cut off at LONGEST_TIME: `summary: true` sends one (README)."""
    longest = max(
        (
            c.timeout * (c.retries + 1) + sum(c.base_delay * 2**n for n in range(c.retries))
            for c in channels
        ),
        default=0.0,
    )
    return min(LONGEST_TIME, max(SHORTEST_TIME, longest + max(paced, default=0.0)))


def _pacing(jobs: Sequence[_Job]) -> list[float]:
    """Per apprise URL, its messages' count times its service's interval (`apprise_send`): how
    long its pace may hold them. Telegram's and webhooks' pace is a second or less a message."""
    counts: dict[str, int] = {}
    for job in jobs:
        if isinstance(job.channel, AppriseChannel):
            url = job.channel.urls[job.url]
            counts[url] = counts.get(url, 0) + 1
    return [count * apprise_send.interval(url) for url, count in counts.items()]


async def _send_all(
    jobs: list[_Job],
    outcomes: list[RequestsAndError | None],
    base_url: str,
    clock: Clock,
    sleep: Callable[[float], object],
    seconds: float,
) -> None:
    """Send every job, each queue in order and the queues concurrently, into `outcomes[i]`,
    each cut off `seconds` from now."""
    queues: dict[tuple[str, ...], list[int]] = {}
    for index, job in enumerate(jobs):
        queues.setdefault(job.queue, []).append(index)
    deadline = asyncio.get_running_loop().time() + seconds
    async with AsyncExitStack() as stack:
        bots = await stack.enter_async_context(telegram.Telegram(base_url, sleep))
        hooks = await stack.enter_async_context(webhook.Webhooks())
        others = None
        if any(isinstance(job.channel, AppriseChannel) for job in jobs):  # loads apprise
            # Paced on the loop's clock, the one the deadline is on.
            loop_clock = asyncio.get_running_loop().time
            others = await stack.enter_async_context(apprise_send.Apprise(sleep, loop_clock))

        async def drain(indices: list[int]) -> None:
            for index in indices:
                outcomes[index] = await _send_one(
                    jobs[index], bots, hooks, others, clock, sleep, deadline
                )

        await asyncio.gather(*(drain(indices) for indices in queues.values()))


async def _send_one(
    job: _Job,
    bots: telegram.Telegram,
    hooks: webhook.Webhooks,
    others: apprise_send.Apprise | None,
    clock: Clock,
    sleep: Callable[[float], object],
    deadline: float,
) -> RequestsAndError:
    channel = job.channel
    if asyncio.get_running_loop().time() >= deadline:  # not begun in time: nothing is sent
        return 0, CUT_OFF
    try:
        if isinstance(channel, TelegramChannel):
            return await _send_telegram(bots, channel, list(job.events), sleep, deadline)
        if isinstance(channel, AppriseChannel) and others is not None:
            return await _send_apprise(others, channel, job, sleep, deadline)
        return await _post_webhook(hooks, channel, job.events[0], clock, sleep, deadline)
    except Exception as exc:  # a bug in a notifier must not end the run
        return 0, f"{type(exc).__name__}: {exc}"


def _record(job: _Job, outcome: RequestsAndError, secrets: tuple[str, ...]) -> Delivery:
    """The Delivery of one message, its error masked, and its log line."""
    channel, (attempts, error) = job.channel, outcome
    kind = _kind(channel)
    if error is not None:
        error = redact(error, (*secrets, *_channel_secrets(channel)))
    name = channel.name
    if isinstance(channel, AppriseChannel) and len(channel.urls) > 1:
        name = f"{channel.name}#{job.url + 1}"  # which URL; the URL itself is a secret
    about = (
        f"target {job.target}"
        if job.target is not None
        else f"run summary of {len(job.events)} target(s)"
    )
    if error is None:
        log.info("notify: %s %r, %s: sent (%d request(s))", kind, name, about, attempts)
    else:
        log.warning(
            "notify: %s %r, %s: failed after %d request(s): %s",
            kind,
            name,
            about,
            attempts,
            error,
        )
    return Delivery(name, kind, job.target, error is None, attempts, error)


def _kind(channel: Channel) -> str:
    if isinstance(channel, TelegramChannel):
        return "telegram"
    return "apprise" if isinstance(channel, AppriseChannel) else "webhook"


async def _send_telegram(
    bots: telegram.Telegram,
    channel: TelegramChannel,
    events: list[Event],
    sleep: Callable[[float], object],
    deadline: float,
) -> RequestsAndError:
    if channel.summary:
        (text, parse_mode), plain = (
            messages.summary_text(events),
            messages.summary_plain_text(events),
        )
    else:
        event = events[0]
        template = channel.message_success if event.status == SUCCESS else channel.message_failure
        style = _style(channel)
        (text, parse_mode), plain = (
            messages.telegram_text(event, template, style),
            messages.plain_text(event, template, style),
        )
    return await bots.send(
        channel.bot_token,
        channel.chat_id,
        text,
        parse_mode,
        plain,
        timeout=channel.timeout,
        backoff=Backoff.for_notification(channel.retries, channel.base_delay, sleep),
        deadline=deadline,
    )


async def _send_apprise(
    sender: apprise_send.Apprise,
    channel: AppriseChannel,
    job: _Job,
    sleep: Callable[[float], object],
    deadline: float,
) -> RequestsAndError:
    """The Telegram channel's text, unescaped (`messages.plain_text`): its first line the title
    when it has several."""
    events = list(job.events)
    if channel.summary:
        text = messages.summary_plain_text(events)
        ok = all(event.status == SUCCESS for event in events)
    else:
        event = events[0]
        ok = event.status == SUCCESS
        template = channel.message_success if ok else channel.message_failure
        text = messages.plain_text(event, template, _style(channel))
    title, _, body = text.partition("\n") if "\n" in text.strip("\n") else ("", "", text)
    return await sender.send(
        channel.urls[job.url],
        title.strip(),
        body.strip("\n"),
        "success" if ok else "failure",
        timeout=channel.timeout,
        backoff=Backoff.for_notification(channel.retries, channel.base_delay, sleep),
        deadline=deadline,
    )


async def _post_webhook(
    hooks: webhook.Webhooks,
    channel: WebhookChannel,
    event: Event,
    clock: Clock,
    sleep: Callable[[float], object],
    deadline: float,
) -> RequestsAndError:
    template = channel.payload_success if event.status == SUCCESS else channel.payload_failure
    style = _style(channel)
    return await hooks.post(
        channel.url,
        messages.webhook_payload(event, template, style),
        secret=channel.secret,
        headers=channel.headers,
        timeout=channel.timeout,
        backoff=Backoff.for_notification(channel.retries, channel.base_delay, sleep),
        clock=clock,
        deadline=deadline,
        style=style,
        allow_plain_http=channel.allow_plain_http,
    )


def _style(channel: Channel) -> messages.Style:
    return messages.Style(channel.style, channel.script)


def _channel_secrets(channel: Channel) -> tuple[str, ...]:
    """What of a channel must never reach a log: its token; a webhook's URL (Slack- and
    Discord-style URLs are credentials), secret and header values."""
    if isinstance(channel, TelegramChannel):
        return (channel.bot_token,)
    if isinstance(channel, AppriseChannel):
        return (*channel.urls, *channel.secrets)
    return (channel.url, channel.secret or "", *channel.headers.values())
