"""A local, stateful fake of the clouds and services snapshot-policy talks to (docs/promises.md §9).

DigitalOcean v2 (`/v2/...`), Hetzner Cloud v1 (`/v1/...`), the Telegram Bot API
(`/bot<token>/getMe|sendMessage`) and a webhook sink (`/hooks/<name>`, also apprise's `json://`
receiver: `apprise_url(name)`), served on 127.0.0.1
over plain HTTP for the real SDKs, with fault injection and a control API (`/_sandbox/...`).
Responses follow the official OpenAPI descriptions; `tests/integration` checks them.

    with Sandbox(state, action_seconds=0.1, boot_seconds=0.5) as sb:
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
         "tags": ["snapshot-policy"],              # optional, DigitalOcean tags that exist
         "snapshot_limit": 100,                    # optional: one snapshot more is refused
                                                   # (Hetzner 403 resource_limit_exceeded,
                                                   # DigitalOcean 422); backups not counted
         "boot_seconds": 5,                        # optional: how long a new server boots
                                                   # (default: the state's `boot_seconds`,
                                                   # else `action_seconds`)
         "server_limit": 10},                      # optional: one server more is refused
                                                   # (DigitalOcean 422, the droplet limit;
                                                   # Hetzner 403 resource_limit_exceeded)
        {"name": "hz-prod", "provider": "hetzner", "tokens": ["hz-token"],
         "pricing": {"currency": "EUR",            # optional: GET /v1/pricing's currency,
                     "vat_rate": "19.00",          # VAT and net image price per GB-month
                     "image": "0.0143"}}           # (each defaults to these)
      ],
      "servers": [
        {"account": "do-main", "id": 1001, "name": "web-1",
         "tags": ["web"],                          # DigitalOcean tags (optional)
         "region": "nyc3",                         # optional; Hetzner: a location, e.g. fsn1
         "created": "2024-01-01T00:00:00Z"},       # optional, default: now
        {"account": "hz-prod", "id": 42, "name": "db-1", "labels": {"role": "db"},
         "ipv6": "2001:db8::/64",                  # optional; its public IPv6 (Hetzner the
                                                   # `ip` block, DigitalOcean an address)
         "snapshot_size_gigabytes": 12.5,          # optional: the size of a snapshot made of
                                                   # it (default 2.5)
         "machine_type": "cax21",                  # optional: DigitalOcean size slug or
                                                   # Hetzner server type (catalogue.py;
                                                   # default s-1vcpu-1gb / cpx22): its disk
                                                   # and architecture, and its snapshots'
         "status": "running",                      # optional: running, off, or starting (boots
                                                   # from the load for `boot_seconds`)
         "image_id": 4712,                         # optional: the snapshot it was made from
         "public_ipv4": true,                      # optional (default true)
         "networks": [7],                          # optional: Hetzner network ids
         "protected": false}                       # optional: Hetzner delete protection
      ],
      "snapshots": [
        {"account": "do-main", "id": 5001,         # id optional (allocated)
         "server_id": 1001,                        # may name a deleted server (an orphan)
         "server_name": "web-1",                   # optional; needed for orphans on Hetzner
         "name": "web-1-20240101000000",           # DO name; Hetzner description
         "created": "2024-01-01T00:00:00Z",        # optional, default: now
         "tags": ["snapshot-policy"],              # DigitalOcean (optional)
         "size_gigabytes": 2.5,                    # optional, default 2.5: the billed size,
                                                   # DO `size_gigabytes`, Hetzner `image_size`
                                                   # (null there while the image is creating)
         "min_disk_gb": 25,                        # optional: DO `min_disk_size`, Hetzner
                                                   # `disk_size` (default: its server's disk)
         "copies": ["ams3"]},                      # DO: regions transferred to (optional)
        {"account": "hz-prod", "server_id": 42, "name": "nightly",
         "labels": {"managed-by": "snapshot-policy"},   # Hetzner (optional)
         "protected": true,                        # Hetzner delete protection (optional)
         "status": "available",                    # or "creating": stuck mid-creation
         "type": "snapshot",                       # or "backup"
         "architecture": "x86"}                    # Hetzner: or "arm" (default: its server's)
      ],
      "volumes": [                                 # optional, DigitalOcean block storage
        {"account": "do-main", "id": "5a1c0d3e-…", # id optional (a UUID made from the name)
         "name": "pgdata", "region": "nyc3",       # region optional: its droplet's
         "size_gigabytes": 100,                    # optional, default 10
         "droplet_ids": [1001]}                    # attached to one droplet at most
      ],
      "volume_snapshots": [                        # optional; finished when made
        {"account": "do-main", "volume_id": "5a1c0d3e-…",  # may name a gone volume
         "id": "8fa70202-…", "name": "web-1-pgdata-20240101000000",
         "created": "2024-01-01T00:00:00Z", "tags": ["snapshot-policy"],
         "size_gigabytes": 2.5, "region": "nyc3"}  # optional: a quarter of the volume's
      ],
      "telegram": {"bots": [{"token": "123456:ABC", "username": "sandbox_bot"}]}
    }

Volumes (DigitalOcean): `GET /v2/volumes[?name=&region=]`, a droplet's `volume_ids`,
`POST /v2/volumes/{id}/snapshots` {name, tags} (201 with the finished snapshot; tags are made
as named), `GET /v2/volumes/{id}/snapshots`, volume snapshots in
`GET /v2/snapshots?resource_type=volume` (and without `resource_type`, after the droplets'),
`GET|DELETE /v2/snapshots/{uuid}`, tagged with `resource_type: volume_snapshot`. Faults match
these paths as any other (e.g. `lose_reply` on `POST ^/v2/volumes/[^/]+/snapshots$`).

Servers from snapshots (restore drills): DigitalOcean `POST /v2/droplets` (202, the droplet
`new` and its `create` action in `links.actions`), `GET /v2/droplets[?tag_name=]`,
`GET|DELETE /v2/droplets/{id}`, `GET /v2/sizes`; Hetzner `POST /v1/servers` (201, the server
`initializing`, create_server, start_server in `next_actions`, a root password without SSH
keys), `GET /v1/servers[?label_selector=&status=]`, `GET|DELETE /v1/servers/{id}`,
`GET /v1/server_types[/{id}]`. A new server boots for its account's `boot_seconds` on the
monotonic clock, like an action, then runs (`active`/`running`). What each cloud refuses is
in `digitalocean.py` and `hetzner.py`; the catalogue of sizes and types in `catalogue.py`.
Faults for them (`faults.py`): `boot_fail` (the create action ends in error, the server stays
off), `slow_boot` (`seconds`), both matching a server `name` pattern, and `lose_reply` on the
create (the server is made, the reply never comes).

Copies in other regions: DigitalOcean `POST /v2/images/{id}/actions` `{"type": "transfer",
"region"}` (201; 422 for a region the image is in or one a transfer runs to), `GET
/v2/images/{id}/actions[/{action_id}]`; a transfer runs `State.transfer_seconds` (default: as
long as an action), is listed in `GET /v2/actions` (`resource_type` image, `region_slug` the
destination), and adds the region to the image's `regions`; the fault `transfer_fail` (a
region `name` pattern) makes it end `errored`.

Power (consistency: shutdown): DigitalOcean `POST /v2/droplets/{id}/actions` `shutdown`,
`power_off`, `power_on`; Hetzner `POST /v1/servers/{id}/actions/shutdown|poweroff|poweron`.
A shutdown's action is over at once (the clouds only send the ACPI request); the guest is
then `stopping` (DigitalOcean still lists it `active`) and `off` after the state's
`shutdown_seconds` (default: `action_seconds`). A power off or on takes `action_seconds`
and, like any action, locks the server meanwhile. Faults: `ignore_shutdown` (the guest keeps
running; only a power off stops it) and `fail_power_on` (the power on ends in error, the
server stays off), both for a `server_id` if given.

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
