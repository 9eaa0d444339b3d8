"""Telegram Bot API (`getMe`, `sendMessage`) and a webhook sink, both recording what they get.

Telegram side: `POST /bot<token>/<method>`, parameters from the query string, a form body (as
python-telegram-bot sends them, non-string values JSON-encoded) or a JSON body. Only the bot
tokens in the state are accepted (else 401 `{"ok": false, ...}`). `sendMessage` checks the
markup of its `parse_mode` (see `markup.py`) and answers 400 "can't parse entities" like the
real API. Every sendMessage is recorded, refused ones too, with `delivered` telling which.

Webhook side: any request to `/hooks/<name>` is recorded (method, headers, raw body, JSON if
it parses) and answered 200, so signature checks can be made on the exact bytes.
"""

from __future__ import annotations

import json
import re
import threading
import zlib
from urllib.parse import parse_qs

from .faults import Fault
from .markup import EntityError, check
from .state import State
from .wire import Request, Response

BOT_PATH = re.compile(r"^/bot(?P<token>[^/]+)/(?P<method>[A-Za-z]+)/?$")
STATUS_TEXT = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def failure(status: int, description: str, **parameters: int) -> Response:
    body: dict = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return Response(status, body)


class TelegramAPI:
    """Answers `/bot<token>/...` requests and keeps the messages it was sent."""

    def __init__(self, state: State) -> None:
        self.state = state
        self._messages: list[dict] = []
        self._lock = threading.Lock()

    def messages(self) -> list[dict]:
        with self._lock:
            return [dict(m) for m in self._messages]

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()

    def bot(self, request: Request) -> str | None:
        """The username of the bot whose token is in the path, or None."""
        match = BOT_PATH.match(request.path)
        return self.state.bots.get(match["token"]) if match else None

    def fault_response(self, fault: Fault, bot: str | None) -> Response:
        if fault.kind == "rate_limit":
            seconds = max(1, round(fault.retry_after))
            return failure(429, f"Too Many Requests: retry after {seconds}", retry_after=seconds)
        return failure(fault.status, STATUS_TEXT.get(fault.status, "Internal Server Error"))

    def handle(self, request: Request) -> Response:
        match = BOT_PATH.match(request.path)
        username = self.bot(request)
        if match is None or username is None:
            return failure(401, "Unauthorized")
        token, method = match["token"], match["method"].lower()
        response = (
            self._get_me(token, username)
            if method == "getme"
            else self._send_message(token, username, _params(request))
            if method == "sendmessage"
            else failure(404, "Not Found")
        )
        response.account = username
        return response

    def _user(self, token: str, username: str) -> dict:
        prefix = token.partition(":")[0]
        bot_id = int(prefix) if prefix.isdigit() else zlib.crc32(token.encode())
        return {"id": bot_id, "is_bot": True, "first_name": "Sandbox Bot", "username": username}

    def _get_me(self, token: str, username: str) -> Response:
        user = self._user(token, username)
        user.update(
            can_join_groups=True,
            can_read_all_group_messages=False,
            supports_inline_queries=False,
            can_connect_to_business=False,
            has_main_web_app=False,
        )
        return Response(200, {"ok": True, "result": user})

    def _send_message(self, token: str, username: str, params: dict) -> Response:
        chat_id, parse_mode = params.get("chat_id"), params.get("parse_mode")
        text = "" if params.get("text") is None else str(params["text"])
        problem = None
        if chat_id in (None, ""):
            problem = "Bad Request: chat_id is empty"
        elif not text.strip():
            problem = "Bad Request: message text is empty"
        elif len(text) > 4096:
            problem = "Bad Request: message is too long"
        else:
            try:
                check(text, parse_mode)
            except EntityError as exc:
                problem = f"Bad Request: can't parse entities: {exc}"
        record = {
            "bot": username,
            "chat_id": _chat_id(chat_id),
            "text": text,
            "parse_mode": parse_mode,
            "delivered": problem is None,
            "error": problem,
        }
        with self._lock:
            self._messages.append(record)
            message_id = len(self._messages)
        if problem:
            return failure(400, problem)
        message = {
            "message_id": message_id,
            "from": self._user(token, username),
            "chat": _chat(record["chat_id"]),
            "date": int(self.state.clock().timestamp()),
            "text": text,
        }
        return Response(200, {"ok": True, "result": message})


class WebhookSink:
    """Records every request to `/hooks/<name>` and answers 200."""

    def __init__(self) -> None:
        self._deliveries: list[dict] = []
        self._lock = threading.Lock()

    def deliveries(self, name: str | None = None) -> list[dict]:
        with self._lock:
            return [dict(d) for d in self._deliveries if name in (None, d["name"])]

    def clear(self) -> None:
        with self._lock:
            self._deliveries.clear()

    def fault_response(self, fault: Fault, _account: object = None) -> Response:
        if fault.kind == "rate_limit":
            return Response(
                429, {"error": "too many requests"}, {"Retry-After": format(fault.retry_after, "g")}
            )
        return Response(fault.status, {"error": "injected fault"})

    def handle(self, request: Request) -> Response:
        name = request.path.removeprefix("/hooks/").strip("/")
        text = request.body.decode("utf-8", errors="replace")
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = None
        with self._lock:
            self._deliveries.append(
                {
                    "name": name,
                    "method": request.method,
                    "headers": dict(request.headers),
                    "body": text,
                    "json": parsed,
                }
            )
        return Response(200, {"ok": True}, account=name)


def _params(request: Request) -> dict:
    """Merge query, form and JSON parameters (a form carries every value as a string)."""
    params = {k: v[-1] for k, v in request.query.items()}
    content_type = request.headers.get("content-type", "")
    if "application/json" in content_type:
        try:
            params.update(json.loads(request.body or b"{}"))
        except ValueError:
            pass
    elif request.body:
        form = parse_qs(request.body.decode("utf-8", errors="replace"), keep_blank_values=True)
        params.update({k: v[-1] for k, v in form.items()})
    return params


def _chat_id(value: object) -> int | str | None:
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value  # type: ignore[return-value]


def _chat(chat_id: int | str) -> dict:
    if isinstance(chat_id, str):
        return {
            "id": -1_000_000_000_000 - zlib.crc32(chat_id.encode()),
            "type": "channel",
            "title": chat_id.lstrip("@"),
            "username": chat_id.lstrip("@"),
        }
    if chat_id < 0:
        return {"id": chat_id, "type": "supergroup", "title": "Sandbox group"}
    return {"id": chat_id, "type": "private", "first_name": "Sandbox"}
