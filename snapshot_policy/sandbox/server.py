"""The HTTP side of the sandbox: routing, fault injection, the request log and the control API.

`Sandbox` owns one `ThreadingHTTPServer` on 127.0.0.1 and sends each request to the front-end
its path names: `/v2/` DigitalOcean, `/v1/` Hetzner, `/bot<token>/` Telegram, `/hooks/` the
webhook sink, `/_sandbox/` the control API (not logged, no auth). Cloud requests are handled
under the state lock, so each is atomic; injected delays happen outside it.
"""

from __future__ import annotations

import inspect
import json
import re
import shlex
import threading
import time
from collections.abc import Callable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from .digitalocean import DigitalOceanAPI
from .faults import ALONGSIDE, Faults, merge_patch
from .hetzner import HetznerAPI
from .state import State
from .telegram import TelegramAPI, WebhookSink
from .wire import Request, Response

SERVICE_PREFIXES = (
    ("/v2/", "digitalocean"),
    ("/v1/", "hetzner"),
    ("/bot", "telegram"),
    ("/hooks/", "webhook"),
    ("/_sandbox/", "control"),
)
TELEGRAM_TOKEN = re.compile(r"^/bot[^/]+")


class Sandbox:
    """A local fake of DigitalOcean, Hetzner Cloud, Telegram and a webhook receiver.

    `state` is a `State`, its JSON form (a dict), or None for an empty cloud. `clock`,
    `action_seconds` and `boot_seconds` are passed to (or set on) the state. Use as a context
    manager, or call `start()` and `stop()`.
    """

    def __init__(
        self,
        state: State | dict | None = None,
        *,
        action_seconds: float | None = None,
        boot_seconds: float | None = None,
        clock: Callable[[], datetime] | None = None,
        port: int = 0,
    ) -> None:
        if not isinstance(state, State):
            # The clock and timings first: the clock dates seeded items given no date, and a
            # seeded server that is `starting` boots from the load.
            given = {"clock": clock, "action_seconds": action_seconds, "boot_seconds": boot_seconds}
            state = State.from_dict(
                state or {}, **{k: v for k, v in given.items() if v is not None}
            )
        if action_seconds is not None:
            state.action_seconds = action_seconds
        if boot_seconds is not None:
            state.boot_seconds = boot_seconds
        if clock is not None:
            state.clock = clock
        self.state = state
        self.faults = Faults()
        self.telegram = TelegramAPI(state)
        self.webhooks = WebhookSink()
        self._apis = {
            "digitalocean": DigitalOceanAPI(
                state, self.faults.action_fails, self.faults.boot, self.faults.transfer_fails
            ),
            "hetzner": HetznerAPI(state, self.faults.action_fails, self.faults.boot),
            "telegram": self.telegram,
            "webhook": self.webhooks,
        }
        self._log: list[dict] = []
        self._log_lock = threading.Lock()
        self._port = port
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> Sandbox:
        httpd = ThreadingHTTPServer(("127.0.0.1", self._port), _Handler)
        httpd.daemon_threads = True
        httpd.sandbox = self  # type: ignore[attr-defined]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="sandbox", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- where clients point ---------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the sandbox is not running")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def digitalocean_endpoint(self) -> str:
        """For pydo's `endpoint` and DIGITALOCEAN_API_URL (no /v2)."""
        return self.url

    @property
    def hetzner_endpoint(self) -> str:
        """For hcloud's `api_endpoint` and HCLOUD_ENDPOINT."""
        return f"{self.url}/v1"

    @property
    def telegram_base_url(self) -> str:
        """For python-telegram-bot's `base_url` and TELEGRAM_API_URL (the token is appended)."""
        return f"{self.url}/bot"

    def webhook_url(self, name: str) -> str:
        return f"{self.url}/hooks/{name}"

    def apprise_url(self, name: str) -> str:
        """An apprise URL (its JSON service, `json://`) that posts to the webhook sink as `name`:
        what an apprise channel sends arrives in `webhook_deliveries(name)`, title and body."""
        return self.webhook_url(name).replace("http://", "json://", 1)

    def env(self) -> dict[str, str]:
        """The endpoint variables the tool reads, pointing at this sandbox."""
        return {
            "DIGITALOCEAN_API_URL": self.digitalocean_endpoint,
            "HCLOUD_ENDPOINT": self.hetzner_endpoint,
            "TELEGRAM_API_URL": self.telegram_base_url,
        }

    # -- what tests look at ----------------------------------------------------------------

    def requests(self, provider: str | None = None) -> list[dict]:
        """The request log, oldest first; tokens are never in it."""
        with self._log_lock:
            return [dict(r) for r in self._log if provider in (None, r["provider"])]

    def clear_requests(self) -> None:
        with self._log_lock:
            self._log.clear()

    def inject(self, kind: str, **options: object) -> dict:
        """Add a fault (see `faults.py` for kinds and options); return it as a dict."""
        return self.faults.add(kind, **options).public()

    def clear_faults(self) -> None:
        self.faults.clear()

    def telegram_messages(self) -> list[dict]:
        return self.telegram.messages()

    def webhook_deliveries(self, name: str | None = None) -> list[dict]:
        return self.webhooks.deliveries(name)

    def dump_state(self) -> dict:
        return self.state.to_dict()

    def load_state(self, data: dict) -> None:
        self.state.load(data)

    # -- serving ---------------------------------------------------------------------------

    def serve(self, request: Request) -> Response | None:
        """Answer one request; None means: drop the connection without answering."""
        service = next(
            (name for prefix, name in SERVICE_PREFIXES if request.path.startswith(prefix)), None
        )
        if service == "control":
            return self._control(request)
        if service is None:
            return Response(404, {"error": f"no sandbox service at {request.path}"})
        api = self._apis[service]
        with self.state.lock:
            account = api.account(request) if service in ("digitalocean", "hetzner") else None
        page = request.arg("page") or "1"
        fired = self.faults.for_request(
            service, request.method, request.path, int(page) if page.isdigit() else 0
        )
        for fault in fired:
            if fault.kind == "delay":
                time.sleep(fault.seconds)
        final = fired[-1] if fired and fired[-1].kind not in ALONGSIDE else None
        response: Response | None = None
        if final is None or final.kind in ("lose_reply", "garble", "patch"):
            with self.state.lock:
                response = api.handle(request)
        elif final.kind != "drop":
            with self.state.lock:
                response = api.fault_response(final, account)
        if final is not None and response is not None:
            _distort(final, response)
        if account is not None and response is not None and response.status < 300:
            for fault in fired:
                if fault.kind == "shift":
                    self._shift(fault, account)
        self._record(service, request, response, account, final.kind if final else None)
        return None if final is not None and final.kind == "lose_reply" else response

    def _shift(self, fault, account) -> None:
        """Change the account's snapshots or servers as a `shift` fault says (faults.py)."""
        state = self.state
        with state.lock:
            servers = fault.resource == "servers"
            taken = state.servers if servers else state.snapshots
            fresh = iter([i for i in fault.ids or [] if i not in taken])
            for _ in range(fault.insert):
                wanted = next(fresh, None)
                if servers:
                    made = state.add_server(account.name, "shifted", id=wanted)
                    made.name = f"shifted-{made.id}"
                else:
                    snapshot = state.add_snapshot(
                        account.name, "shifted", server_id=fault.server_id, id=wanted
                    )
                    snapshot.name = f"shifted-{snapshot.id}"
            for item_id in fault.delete or []:
                found = taken.get(item_id)
                if found is None or found.account != account.name:
                    continue
                if servers:
                    state.remove_server(item_id)
                else:
                    state.delete_snapshot(found)

    def _record(self, service, request, response, account, fault) -> None:
        path = request.path
        if service == "telegram":
            path = TELEGRAM_TOKEN.sub("/bot<token>", path)
        name = response.account if response is not None and response.account else None
        entry = {
            "time": time.time(),
            "provider": service,
            "method": request.method,
            "path": path,
            "query": {k: v[0] if len(v) == 1 else v for k, v in request.query.items()},
            "account": name or (account.name if account else None),
            "status": response.status if response is not None else None,
            "fault": fault,
        }
        with self._log_lock:
            self._log.append(entry)

    def _control(self, request: Request) -> Response:
        """The control API; the same operations as this class's methods."""
        route = (request.method, request.path.removeprefix("/_sandbox").rstrip("/") or "/")
        try:
            if route == ("GET", "/"):
                return Response(200, {"url": self.url, "env": self.env()})
            if route == ("GET", "/state"):
                return Response(200, self.dump_state())
            if route == ("PUT", "/state"):
                self.load_state(request.json())
                return Response(200, self.dump_state())
            if route == ("GET", "/requests"):
                return Response(200, self.requests(request.arg("provider")))
            if route == ("DELETE", "/requests"):
                self.clear_requests()
                return Response(204)
            if route == ("GET", "/faults"):
                return Response(200, self.faults.list())
            if route == ("POST", "/faults"):
                options = request.json()
                return Response(201, self.inject(options.pop("kind", ""), **options))
            if route == ("DELETE", "/faults"):
                self.clear_faults()
                return Response(204)
            if route == ("GET", "/telegram/messages"):
                return Response(200, self.telegram_messages())
            if route == ("DELETE", "/telegram/messages"):
                self.telegram.clear()
                return Response(204)
            if route == ("GET", "/webhooks"):
                return Response(200, self.webhook_deliveries(request.arg("name")))
            if route == ("DELETE", "/webhooks"):
                self.webhooks.clear()
                return Response(204)
        except (ValueError, TypeError, KeyError) as exc:
            return Response(400, {"error": f"{type(exc).__name__}: {exc}"})
        return Response(404, {"error": f"no control route {request.method} {request.path}"})


def _distort(fault, response: Response) -> None:
    """Cut a `garble` fault's reply short; apply any fault's `patch` and `headers` to its reply."""
    if fault.kind == "garble":
        payload = response.payload()
        response.body = payload[: len(payload) // 2]
    elif fault.patch is not None and isinstance(response.body, dict):
        response.body = merge_patch(response.body, fault.patch)
    response.headers.update(fault.headers or {})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # idle keep-alive connections end eventually
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stalls

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format: str, *args: object) -> None:
        pass  # the sandbox keeps its own request log

    def _dispatch(self) -> None:
        try:
            self._answer()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = (
                True  # the client went away (killed, or timed out): nothing to answer
            )

    def _answer(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        host, port = self.server.server_address
        request = Request(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            base_url=f"http://{self.headers.get('Host') or f'{host}:{port}'}",
        )
        response = self.server.sandbox.serve(request)  # type: ignore[attr-defined]
        if response is None:
            self.close_connection = True
            return
        payload = response.payload()
        if "Date" in response.headers:  # the API dated its reply itself (rate-limit reset)
            self.send_response_only(response.status)
            self.send_header("Server", self.version_string())
        else:
            self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if response.status != 204:
            self.wfile.write(payload)


class StateFileProblem(ValueError):
    """A `--state` file that cannot be read or is not in the sandbox's state format."""


def read_state(state_file: str) -> dict:
    """Return the state in `state_file`; raise StateFileProblem with a sentence saying what is
    wrong and where, never a bare TypeError from the code that would have loaded it."""
    try:
        with open(state_file, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as error:
        raise StateFileProblem(f"cannot read {state_file}: {error.strerror or error}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise StateFileProblem(f"{state_file} is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise StateFileProblem(
            f"{state_file}: the state must be a JSON object with accounts, servers and snapshots"
        )
    loaders = {"servers": State.add_server, "snapshots": State.add_snapshot}
    for key, loader in loaders.items():
        parameters = inspect.signature(loader).parameters
        required = [
            n
            for n, p in parameters.items()
            if n != "self"
            and p.default is inspect.Parameter.empty
            and p.kind is p.POSITIONAL_OR_KEYWORD
        ]
        for number, item in enumerate(data.get(key, [])):
            where = f"{state_file}: {key}[{number}]"
            if not isinstance(item, dict):
                raise StateFileProblem(f"{where} must be an object")
            if missing := [n for n in required if n not in item]:
                raise StateFileProblem(
                    f"{where} needs {', '.join(missing)} "
                    "(the format is in the sandbox's documentation)"
                )
            if unknown := sorted(set(item) - set(parameters)):
                raise StateFileProblem(f"{where} has unknown key(s) {', '.join(unknown)}")
    try:
        State.from_dict(data)
    except (KeyError, TypeError, ValueError) as error:
        raise StateFileProblem(
            f"{state_file} is not a sandbox state file: {type(error).__name__}: {error}"
        ) from None
    return data


def serve(port: int, state_file: str | None) -> None:
    """Run the sandbox on 127.0.0.1:`port` until Ctrl-C (for `snapshot-policy sandbox`).

    The state comes from `state_file` (JSON, format in the package docstring) or, without one,
    from `example_state()`. The file is only read; GET /_sandbox/state shows the live state.
    Raise StateFileProblem for a bad file, OSError when the port cannot be served.
    """
    from .example import example_state

    data = read_state(state_file) if state_file else example_state()
    with Sandbox(data, action_seconds=2.0, boot_seconds=5.0, port=port) as sandbox:
        # Ctrl-C stops it cleanly from the first line on, also while it is still printing.
        try:
            print(f"sandbox listening on {sandbox.url}  (control API: {sandbox.url}/_sandbox/)")
            for key, value in sandbox.env().items():  # for the shell: eval "$(… | grep ^export)"
                print(f"export {key}={shlex.quote(value)}")
            for account in sandbox.state.accounts.values():
                print(f"account {account.name} ({account.provider}): token {account.tokens[0]}")
            for token, username in sandbox.state.bots.items():
                print(f"telegram bot @{username}: token {token}")
            print("Ctrl-C stops it.", flush=True)
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("sandbox stopped")
