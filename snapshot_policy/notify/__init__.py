"""Notifications (SPEC §7): each target's result to its Telegram chats and webhooks.

Best effort: a notification that fails is logged and reported as a `Delivery`, never raised,
so it cannot change a snapshot's outcome. What is said lives in `messages`, how it travels
in `telegram` and `webhook`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence

from snapshot_policy.backoff import Backoff
from snapshot_policy.redaction import mask_fields, redact
from snapshot_policy.model import Channel, Clock, Delivery, TelegramChannel, WebhookChannel
from snapshot_policy.notify import messages, telegram, webhook
from snapshot_policy.notify.messages import SUCCESS, Event

__all__ = ["Event", "deliver"]

log = logging.getLogger(__name__)


def deliver(
    routes: Sequence[tuple[Event, Sequence[Channel]]],
    telegram_base_url: str,
    clock: Clock,
    secrets: Iterable[str] = (),
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Send each event to each of its channels and return one Delivery per message, in order.

    `clock` dates each webhook signature, which receivers compare with their own clocks.

    A Telegram channel with `summary` gets one message covering every event routed to it,
    after the per-event messages. Never raise: a failure becomes `ok=False` with an error
    from which `secrets` and the channel's own secrets are masked, and a WARNING log line.
    A Telegram base URL or webhook URL that is not https (plain http only to this machine,
    `transport`) fails its deliveries with `attempts=0`: nothing is sent.
    """
    secrets = tuple(secrets)
    routes = [(mask_fields(event, secrets), channels) for event, channels in routes]
    deliveries: list[Delivery] = []
    summaries: dict[TelegramChannel, list[Event]] = {}
    for event, channels in routes:
        for channel in channels:
            if isinstance(channel, TelegramChannel) and channel.summary:
                summaries.setdefault(channel, []).append(event)
            else:
                deliveries.append(_deliver_one(channel, [event], telegram_base_url, secrets, clock, sleep))
    for channel, events in summaries.items():
        deliveries.append(_deliver_one(channel, events, telegram_base_url, secrets, clock, sleep))
    return deliveries


def _deliver_one(
    channel: Channel, events: list[Event], base_url: str, secrets: tuple[str, ...], clock: Clock, sleep: Callable[[float], None]
) -> Delivery:
    """Send one message about `events` (several only for a summary) and log how it went."""
    kind = "telegram" if isinstance(channel, TelegramChannel) else "webhook"
    target = None if isinstance(channel, TelegramChannel) and channel.summary else events[0].target
    try:
        if isinstance(channel, TelegramChannel):
            attempts, error = _send_telegram(channel, events, base_url, sleep)
        else:
            attempts, error = _post_webhook(channel, events[0], clock, sleep)
    except Exception as exc:  # a bug in a notifier must not end the run
        attempts, error = 0, f"{type(exc).__name__}: {exc}"
    if error is not None:
        error = redact(error, (*secrets, *_channel_secrets(channel)))
    about = f"target {target}" if target is not None else f"run summary of {len(events)} target(s)"
    if error is None:
        log.info("notify: %s %r, %s: sent (%d request(s))", kind, channel.name, about, attempts)
    else:
        log.warning("notify: %s %r, %s: failed after %d request(s): %s", kind, channel.name, about, attempts, error)
    return Delivery(channel.name, kind, target, error is None, attempts, error)


def _send_telegram(
    channel: TelegramChannel, events: list[Event], base_url: str, sleep: Callable[[float], None]
) -> tuple[int, str | None]:
    if channel.summary:
        (text, parse_mode), plain = messages.summary_text(events), messages.summary_plain_text(events)
    else:
        event = events[0]
        template = channel.message_success if event.status == SUCCESS else channel.message_failure
        (text, parse_mode), plain = messages.telegram_text(event, template), messages.plain_text(event, template)
    return telegram.send(
        channel.bot_token, channel.chat_id, text, parse_mode, plain,
        base_url=base_url, timeout=channel.timeout,
        backoff=Backoff.for_notification(channel.retries, channel.base_delay, sleep),
    )


def _post_webhook(channel: WebhookChannel, event: Event, clock: Clock, sleep: Callable[[float], None]) -> tuple[int, str | None]:
    template = channel.payload_success if event.status == SUCCESS else channel.payload_failure
    return webhook.post(
        channel.url, messages.webhook_payload(event, template),
        secret=channel.secret, headers=channel.headers, timeout=channel.timeout,
        backoff=Backoff.for_notification(channel.retries, channel.base_delay, sleep), clock=clock,
    )


def _channel_secrets(channel: Channel) -> tuple[str, ...]:
    """What of a channel must never reach a log: its token; a webhook's URL (Slack- and
    Discord-style URLs are credentials), secret and header values."""
    if isinstance(channel, TelegramChannel):
        return (channel.bot_token,)
    return (channel.url, channel.secret or "", *channel.headers.values())
