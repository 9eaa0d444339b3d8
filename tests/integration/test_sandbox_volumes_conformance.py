"""The sandbox's volume endpoints (issue 23, item 6) validate against DigitalOcean's official
API description, as the rest of it does (test_sandbox_conformance.py; skipped the same way
where the description is absent)."""

from __future__ import annotations

from tests.integration.test_sandbox_conformance import (  # noqa: F401 — fixtures used by name
    Recorder,
    openapi,
    specs_present,
    validate,
)

VOLUME = "7724db7c-e098-11e5-b522-000f53304e51"


def test_volume_responses_match_the_openapi_description(sandbox, openapi):  # noqa: F811
    sandbox.state.add_volume("do-a", "pgdata", id=VOLUME, droplet_ids=[101])
    call = Recorder(sandbox)
    call("digitalocean", "GET", "/v2/volumes", 200)
    call("digitalocean", "GET", "/v2/volumes", 200, params={"name": "pgdata", "per_page": 1})
    call("digitalocean", "GET", "/v2/droplets/101", 200)
    made = call(
        "digitalocean",
        "POST",
        f"/v2/volumes/{VOLUME}/snapshots",
        201,
        json={"name": "web-1-pgdata-20250101000000", "tags": ["snapshot-policy"]},
    ).json()["snapshot"]
    call("digitalocean", "POST", f"/v2/volumes/{VOLUME}/snapshots", 400, json={"tags": []})
    call("digitalocean", "POST", "/v2/volumes/no-such-volume/snapshots", 404, json={"name": "x"})
    call("digitalocean", "GET", f"/v2/volumes/{VOLUME}/snapshots", 200)
    call("digitalocean", "GET", "/v2/snapshots", 200, params={"resource_type": "volume"})
    call("digitalocean", "GET", "/v2/snapshots", 200)
    call("digitalocean", "GET", f"/v2/snapshots/{made['id']}", 200)
    call("digitalocean", "POST", "/v2/tags", 201, json={"name": "snapshot-policy-x"})
    call(
        "digitalocean",
        "POST",
        "/v2/tags/snapshot-policy-x/resources",
        204,
        json={"resources": [{"resource_id": made["id"], "resource_type": "volume_snapshot"}]},
    )
    call("digitalocean", "DELETE", f"/v2/snapshots/{made['id']}", 204)
    call("digitalocean", "DELETE", f"/v2/snapshots/{made['id']}", 404)
    problems = []
    for provider, request, response in call.exchanges:
        try:
            validate(openapi, provider, request, response)
        except Exception as error:  # noqa: BLE001 — collect every mismatch
            problems.append(f"{request.method} {request.url.path}: {error}")
    assert problems == []
