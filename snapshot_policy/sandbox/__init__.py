"""A local, stateful fake of the clouds and services snapshot-policy talks to (docs/promises.md §9).

DigitalOcean v2 (`/v2/...`), Hetzner Cloud v1 (`/v1/...`), the Telegram Bot API
(`/bot<token>/getMe|sendMessage`) and a webhook sink (`/hooks/<name>`, also apprise's `json://`
receiver: `apprise_url(name)`), served on 127.0.0.1
over plain HTTP for the real SDKs, with fault injection and a control API (`/_sandbox/...`).
Responses follow the official OpenAPI descriptions; `tests/integration` checks them.

    with Sandbox(state, action_seconds=0.1) as sb:
        pydo.Client(token, endpoint=sb.digitalocean_endpoint, authentication_policy=...)
        hcloud.Client(token, api_endpoint=sb.hetzner_endpoint)
        telegram.Bot(bot_token, base_url=sb.telegram_base_url)

State JSON (`--state FILE`, `GET`/`PUT /_sandbox/state`, `Sandbox(state=dict)`); every list
and every key marked optional may be left out:

    {
      "accounts": [
        {"name": "do-main", "provider": "digitalocean", "tokens": ["do-token"],
         "rate_limit": 5000,                       # optional, requests/hour (default 5000/3600)
         "burst_limit": 250,                       # optional, DigitalOcean only: requests in any
                                                   # 60 s (default: none); 429 with retry-after
         "tags": ["snapshot-policy"]},             # optional, DigitalOcean tags that exist
        {"name": "hz-prod", "provider": "hetzner", "tokens": ["hz-token"]}
      ],
      "servers": [
        {"account": "do-main", "id": 1001, "name": "web-1",
         "tags": ["web"],                          # DigitalOcean tags (optional)
         "region": "nyc3",                         # optional; Hetzner: a location, e.g. fsn1
         "created": "2024-01-01T00:00:00Z"},       # optional, default: now
        {"account": "hz-prod", "id": 42, "name": "db-1", "labels": {"role": "db"},
         "ipv6": "2001:db8::/64",                  # optional; Hetzner public IPv6 `ip`
         "snapshot_size_gigabytes": 12.5}          # optional: the size of a snapshot made of
                                                   # it (default 2.5)
      ],
      "snapshots": [
        {"account": "do-main", "id": 5001,         # id optional (allocated)
         "server_id": 1001,                        # may name a deleted server (an orphan)
         "server_name": "web-1",                   # optional; needed for orphans on Hetzner
         "name": "web-1-20240101000000",           # DO name; Hetzner description
         "created": "2024-01-01T00:00:00Z",        # optional, default: now
         "tags": ["snapshot-policy"],              # DigitalOcean (optional)
         "size_gigabytes": 2.5},                   # optional, default 2.5: the billed size,
                                                   # DO `size_gigabytes`, Hetzner `image_size`
                                                   # (null there while the image is creating)
        {"account": "hz-prod", "server_id": 42, "name": "nightly",
         "labels": {"managed-by": "snapshot-policy"},   # Hetzner (optional)
         "protected": true,                        # Hetzner delete protection (optional)
         "status": "available",                    # or "creating": stuck mid-creation
         "type": "snapshot"}                       # or "backup"
      ],
      "telegram": {"bots": [{"token": "123456:ABC", "username": "sandbox_bot"}]}
    }

Control API (JSON; no auth; not in the request log): `GET /_sandbox/` (url, env),
`GET|PUT /_sandbox/state`, `GET|DELETE /_sandbox/requests` (`?provider=`),
`GET|POST|DELETE /_sandbox/faults` (POST body: `{"kind": ..., options}` as `Sandbox.inject`),
`GET|DELETE /_sandbox/telegram/messages`, `GET|DELETE /_sandbox/webhooks` (`?name=`).
"""

from .example import example_state
from .faults import Fault
from .server import Sandbox, serve
from .state import State

__all__ = ["Fault", "Sandbox", "State", "example_state", "serve"]
