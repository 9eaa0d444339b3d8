"""The sandbox's Telegram Bot API (through python-telegram-bot) and its webhook sink."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json

import httpx
import pytest
import telegram

from tests.integration.conftest import BOT_TOKEN


def run(coroutine):
    return asyncio.run(coroutine)


def bot(sandbox, token: str = BOT_TOKEN) -> telegram.Bot:
    return telegram.Bot(token, base_url=sandbox.telegram_base_url)


def send(sandbox, chat_id, text: str, **kwargs) -> telegram.Message:
    async def go():
        async with bot(sandbox) as b:
            return await b.send_message(chat_id, text, **kwargs)

    return run(go())


def test_get_me_and_send_message_are_recorded(sandbox):
    async def scenario():
        async with bot(sandbox) as b:  # initialize() calls getMe
            sent = await b.send_message(555, "<b>done</b> 3 snapshots", parse_mode="HTML")
            return b.username, sent

    username, message = run(scenario())
    assert username == "test_bot"
    assert message.chat.id == 555 and message.text == "<b>done</b> 3 snapshots"
    assert sandbox.telegram_messages() == [
        {
            "bot": "test_bot",
            "chat_id": 555,
            "text": "<b>done</b> 3 snapshots",
            "parse_mode": "HTML",
            "delivered": True,
            "error": None,
        }
    ]
    paths = [r["path"] for r in sandbox.requests("telegram")]
    assert paths == ["/bot<token>/getMe", "/bot<token>/sendMessage"]
    assert BOT_TOKEN not in json.dumps(sandbox.requests())


def test_json_bodies_and_channel_usernames_are_accepted(sandbox):
    reply = httpx.post(
        f"{sandbox.telegram_base_url}{BOT_TOKEN}/sendMessage",
        json={"chat_id": "@ops", "text": "plain"},
    ).json()
    assert reply["ok"] is True and reply["result"]["chat"]["type"] == "channel"
    assert sandbox.telegram_messages()[0]["chat_id"] == "@ops"


def test_unknown_bot_token_is_unauthorized(sandbox):
    async def go():
        async with bot(sandbox, "999:WRONG"):
            pass

    with pytest.raises(telegram.error.InvalidToken):
        run(go())


@pytest.mark.parametrize(
    ("text", "parse_mode"),
    [
        ("*bold without end", "Markdown"),
        ("snapshot_name_with_underscores", "Markdown"),
        ("`code", "Markdown"),
        ("done. 3 snapshots", "MarkdownV2"),
        ("*bold", "MarkdownV2"),
        ("<b>unclosed", "HTML"),
        ("<blink>x</blink>", "HTML"),
    ],
)
def test_malformed_markup_cannot_parse_entities(sandbox, text, parse_mode):
    with pytest.raises(telegram.error.BadRequest) as caught:
        send(sandbox, 1, text, parse_mode=parse_mode)
    assert "can't parse entities" in str(caught.value).lower()
    [record] = sandbox.telegram_messages()
    assert record["delivered"] is False and record["text"] == text


@pytest.mark.parametrize(
    ("text", "parse_mode"),
    [
        ("*web-1* done, `snap_1`", "Markdown"),
        ("snapshot\\_name", "Markdown"),
        ("*web\\-1* done\\. [log](https://example.com/a_(b\\))", "MarkdownV2"),
        ("a &lt; b <a href='https://x'>link</a>", "HTML"),
    ],
)
def test_wellformed_markup_is_delivered(sandbox, text, parse_mode):
    assert send(sandbox, 1, text, parse_mode=parse_mode).text == text


def test_plain_text_fallback_after_a_parse_error_is_delivered(sandbox):
    async def notify(text: str):
        async with bot(sandbox) as b:
            try:
                return await b.send_message(7, text, parse_mode="Markdown")
            except telegram.error.BadRequest:
                return await b.send_message(7, text)

    run(notify("backup_of_web_1 *failed"))
    assert [(m["parse_mode"], m["delivered"]) for m in sandbox.telegram_messages()] == [
        ("Markdown", False),
        (None, True),
    ]


def test_webhook_sink_records_exact_bytes_headers_and_json(sandbox):
    body = json.dumps({"event": "apply", "created": 2}).encode()
    signature = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    response = httpx.post(
        sandbox.webhook_url("n8n"),
        content=body,
        headers={"Content-Type": "application/json", "X-Signature-256": signature},
    )
    assert response.status_code == 200
    [delivery] = sandbox.webhook_deliveries("n8n")
    assert delivery["method"] == "POST" and delivery["json"] == {"event": "apply", "created": 2}
    assert delivery["headers"]["x-signature-256"] == signature
    expected = hmac.new(b"s3cret", delivery["body"].encode(), hashlib.sha256).hexdigest()
    assert expected == signature
    assert sandbox.webhook_deliveries("slack") == []
