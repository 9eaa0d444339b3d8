"""Servers made from snapshots (restore drills, restore) through the real SDKs against the
sandbox: the catalogue, create, the boot poll, and the one DELETE this tool ever sends for a
server — refused for anything but its own drill server (docs/promises.md §5)."""

from __future__ import annotations

import time

import pytest

from snapshot_policy.core.model import (
    DIGITALOCEAN,
    HETZNER,
    Account,
    MadeServer,
    ProviderError,
    ServerRequest,
)
from snapshot_policy.core.ownership import drill_server_labels
from snapshot_policy.edges.providers import connect
from snapshot_policy.edges.providers.guard import NOT_A_DRILL_SERVER
from snapshot_policy.edges.providers.hetzner import SERVER_LIMIT, SNAPSHOT_LIMIT
from snapshot_policy.edges.providers.retry import Refused, RetryPolicy, Timing
from tests.integration.conftest import DO_TOKEN, HZ_TOKEN

TIMING = Timing(request_timeout=2, creation_timeout=5, poll_interval=0.02)
BOTH = pytest.mark.parametrize("provider", [DIGITALOCEAN, HETZNER])
ACCOUNT = {DIGITALOCEAN: "do-a", HETZNER: "hz-a"}
SOURCE = {DIGITALOCEAN: 101, HETZNER: 301}
MACHINE = {DIGITALOCEAN: "s-1vcpu-1gb", HETZNER: "cpx22"}
REGION = {DIGITALOCEAN: "nyc3", HETZNER: "fsn1"}
OWNER = "prod"
NAME = "drill-web-101-20261207030000"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def adapter(sandbox, sleeps):
    def make(provider: str):
        endpoint = (
            sandbox.digitalocean_endpoint if provider == DIGITALOCEAN else sandbox.hetzner_endpoint
        )
        token = DO_TOKEN if provider == DIGITALOCEAN else HZ_TOKEN
        account = Account("main", provider, token, endpoint)

        def sleep(seconds: float) -> None:
            sleeps.append(seconds)
            time.sleep(min(seconds, 0.02))

        return connect(account, TIMING, RetryPolicy(sleep=sleep, jitter=lambda: 0.5))

    return make


def snapshot_of(sandbox, provider: str) -> str:
    """A finished snapshot of the account's first server: what a drill restores."""
    made = sandbox.state.add_snapshot(
        ACCOUNT[provider], "web-1-20261207030000", server_id=SOURCE[provider]
    )
    return str(made.id)


def request(provider: str, image_id: str, name: str = NAME, owner: str = OWNER, **options):
    return ServerRequest(
        name=name,
        image_id=image_id,
        machine_type=options.pop("machine_type", MACHINE[provider]),
        region=options.pop("region", REGION[provider]),
        labels=drill_server_labels(provider, owner, "web", image_id) if owner else {},
        **options,
    )


def posts(sandbox, provider: str) -> list[dict]:
    path = "/v2/droplets" if provider == DIGITALOCEAN else "/v1/servers"
    return [r for r in sandbox.requests(provider) if r["method"] == "POST" and r["path"] == path]


def deletes(sandbox, provider: str) -> list[dict]:
    return [r for r in sandbox.requests(provider) if r["method"] == "DELETE"]


def named(sandbox, provider: str, name: str) -> list:
    account = sandbox.state.accounts[ACCOUNT[provider]]
    return [s for s in sandbox.state.servers_of(account) if s.name == name]


def until(provider_api, server_id: str, *statuses: str, timeout: float = 10) -> MadeServer:
    """Poll as the drill engine does (drill_servers, one listing a round) until the server's
    status is one of `statuses`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = {s.id: s for s in provider_api.drill_servers()}
        if server_id in listed and listed[server_id].status in statuses:
            return listed[server_id]
        time.sleep(0.02)
    raise TimeoutError(f"server {server_id} never became {statuses}")


# -- the catalogue and the listings' new fields ----------------------------------------------


@BOTH
def test_machine_types_are_the_clouds_catalogue_in_one_listing(sandbox, adapter, provider):
    provider_api = adapter(provider)
    sandbox.clear_requests()
    types = {t.name: t for t in provider_api.machine_types()}
    assert len(sandbox.requests(provider)) == provider_api.requests == 1
    if provider == DIGITALOCEAN:
        small = types["s-1vcpu-1gb"]
        assert (small.disk_gb, small.price_hourly, small.currency) == (25, 0.00893, "USD")
        assert "nyc3" in small.regions and small.available and small.architecture == "x86"
        assert not types["m-2vcpu-16gb"].available and types["m-2vcpu-16gb"].regions == ()
    else:
        cpx = types["cpx22"]
        assert (cpx.disk_gb, cpx.price_hourly, cpx.currency) == (80, 0.012, "EUR")
        assert cpx.regions == ("fsn1", "hel1", "nbg1") and cpx.available
        assert types["cax11"].architecture == "arm"
        assert not types["cx22"].available  # deprecated
        assert types["cx23"].regions == ("fsn1", "nbg1")  # sold out in hel1


@BOTH
def test_listings_say_where_a_server_runs_and_what_a_snapshot_needs(sandbox, adapter, provider):
    snapshot_id = snapshot_of(sandbox, provider)
    provider_api = adapter(provider)
    assert {s.id: s.region for s in provider_api.servers()}[str(SOURCE[provider])] == (
        REGION[provider]
    )
    listed = {s.id: s for s in provider_api.snapshots()}[snapshot_id]
    if provider == DIGITALOCEAN:
        assert (listed.min_disk_gb, listed.regions, listed.architecture) == (25, ("nyc3",), None)
    else:
        assert (listed.min_disk_gb, listed.regions, listed.architecture) == (80, (), "x86")


# -- create and boot --------------------------------------------------------------------------


@BOTH
def test_a_server_is_made_from_a_snapshot_with_one_post_and_boots(sandbox, adapter, provider):
    snapshot_id = snapshot_of(sandbox, provider)
    provider_api = adapter(provider)
    sandbox.clear_requests()
    made = provider_api.create_server(request(provider, snapshot_id))
    assert len(posts(sandbox, provider)) == len(sandbox.requests(provider)) == 1
    assert made.name == NAME and made.status == "starting" and made.region == REGION[provider]
    assert made.image_id == snapshot_id
    assert made.labels == drill_server_labels(provider, OWNER, "web", snapshot_id)
    (server,) = named(sandbox, provider, NAME)
    assert str(server.id) == made.id
    running = until(provider_api, made.id, "running")
    assert running.public_ip and running.created is not None
    assert provider_api.get_server(made.id) == running


@BOTH
def test_the_boot_poll_is_one_listing_a_round(sandbox, adapter, provider):
    """While servers this adapter made boot, their create actions are read too, in one batch;
    once they run, nothing but the listing."""
    snapshot_id = snapshot_of(sandbox, provider)
    sandbox.state.boot_seconds = 1.0  # still booting at the first poll, however loaded the host
    provider_api = adapter(provider)
    made = [
        provider_api.create_server(request(provider, snapshot_id, name=f"{NAME}-{n}"))
        for n in range(3)
    ]
    sandbox.clear_requests()
    booting = provider_api.drill_servers()
    assert {s.status for s in booting} == {"starting"}
    assert len(sandbox.requests(provider)) == 2  # the listing and one batch of actions
    for server in made:
        until(provider_api, server.id, "running", timeout=20)
    sandbox.clear_requests()
    assert {s.status for s in provider_api.drill_servers()} == {"running"}
    assert len(sandbox.requests(provider)) == 1


@BOTH
def test_drill_servers_lists_every_drill_marked_server_and_nothing_else(sandbox, adapter, provider):
    snapshot_id = snapshot_of(sandbox, provider)
    provider_api = adapter(provider)
    ours = provider_api.create_server(request(provider, snapshot_id))
    theirs = provider_api.create_server(
        request(provider, snapshot_id, name=f"{NAME}-x", owner="staging")
    )
    restored = provider_api.create_server(
        request(provider, snapshot_id, name="web-restored", owner=None)
    )
    listed = {s.id for s in provider_api.drill_servers()}
    assert listed == {ours.id, theirs.id}  # whoever's; not a restore's, not the fleet
    assert restored.id not in listed


@BOTH
def test_a_server_that_fails_to_boot_is_failed(sandbox, adapter, provider):
    snapshot_id = snapshot_of(sandbox, provider)
    sandbox.inject("boot_fail", service=provider, name="^drill-")
    provider_api = adapter(provider)
    made = provider_api.create_server(request(provider, snapshot_id))
    assert until(provider_api, made.id, "failed", "running").status == "failed"
    assert provider_api.get_server(made.id).status == "failed"


def test_a_hetzner_server_without_public_network_has_only_its_private_address(sandbox, adapter):
    snapshot_id = snapshot_of(sandbox, HETZNER)
    provider_api = adapter(HETZNER)
    made = provider_api.create_server(
        request(HETZNER, snapshot_id, public_network=False, networks=("4711",))
    )
    running = until(provider_api, made.id, "running")
    assert running.public_ip is None and running.private_ip.startswith("10.")
    (server,) = named(sandbox, HETZNER, NAME)
    assert server.networks == [4711] and not server.public_ipv4


def test_a_hetzner_server_without_public_network_or_networks_gets_only_an_ipv6(sandbox, adapter):
    """Hetzner refuses a server with no network at all; a public IPv6 is the least it allows
    (and costs nothing, unlike an IPv4)."""
    snapshot_id = snapshot_of(sandbox, HETZNER)
    provider_api = adapter(HETZNER)
    made = provider_api.create_server(request(HETZNER, snapshot_id, public_network=False))
    running = until(provider_api, made.id, "running")
    assert running.public_ip and ":" in running.public_ip
    (server,) = named(sandbox, HETZNER, NAME)
    assert not server.public_ipv4 and server.ipv6 and server.networks == []


def test_a_hetzner_network_named_not_numbered_is_refused_before_any_request(sandbox, adapter):
    snapshot_id = snapshot_of(sandbox, HETZNER)
    provider_api = adapter(HETZNER)
    sandbox.clear_requests()
    with pytest.raises(Refused, match="not a network id"):
        provider_api.create_server(request(HETZNER, snapshot_id, networks=("backend",)))
    assert sandbox.requests(HETZNER) == []


def test_a_droplet_without_public_networking_has_no_public_address(sandbox, adapter):
    snapshot_id = snapshot_of(sandbox, DIGITALOCEAN)
    provider_api = adapter(DIGITALOCEAN)
    made = provider_api.create_server(request(DIGITALOCEAN, snapshot_id, public_network=False))
    running = until(provider_api, made.id, "running")
    assert running.public_ip is None


@BOTH
@pytest.mark.parametrize("wrong", ["machine_type", "region"])
def test_a_create_the_cloud_refuses_is_raised_with_its_words_and_sent_once(
    sandbox, adapter, provider, wrong
):
    snapshot_id = snapshot_of(sandbox, provider)
    provider_api = adapter(provider)
    sandbox.clear_requests()
    with pytest.raises(ProviderError) as raised:
        provider_api.create_server(request(provider, snapshot_id, **{wrong: "nowhere-9"}))
    assert raised.value.refused and not raised.value.transient
    assert len(posts(sandbox, provider)) == 1 and named(sandbox, provider, NAME) == []


@BOTH
def test_a_lost_reply_is_found_by_name_never_made_twice(sandbox, adapter, provider):
    snapshot_id = snapshot_of(sandbox, provider)
    path = "^/v2/droplets$" if provider == DIGITALOCEAN else "^/v1/servers$"
    sandbox.inject("lose_reply", service=provider, method="POST", path=path)
    provider_api = adapter(provider)
    sandbox.clear_requests()
    made = provider_api.create_server(request(provider, snapshot_id))
    (server,) = named(sandbox, provider, NAME)
    assert made.id == str(server.id) and made.name == NAME
    assert len(posts(sandbox, provider)) == 1


def test_digitalocean_never_repeats_a_create_that_may_have_acted(sandbox, adapter):
    """DigitalOcean takes two droplets of one name: after a 500 with no droplet of that name
    listed, the create is not sent again; the caller's journal keeps the name."""
    snapshot_id = snapshot_of(sandbox, DIGITALOCEAN)
    sandbox.inject("error", service=DIGITALOCEAN, method="POST", path="^/v2/droplets$", status=500)
    provider_api = adapter(DIGITALOCEAN)
    sandbox.clear_requests()
    with pytest.raises(ProviderError) as raised:
        provider_api.create_server(request(DIGITALOCEAN, snapshot_id))
    assert raised.value.status == 500 and not raised.value.refused
    assert len(posts(sandbox, DIGITALOCEAN)) == 1 and named(sandbox, DIGITALOCEAN, NAME) == []


def test_hetzner_repeats_a_create_that_made_nothing_its_names_are_unique(sandbox, adapter):
    snapshot_id = snapshot_of(sandbox, HETZNER)
    sandbox.inject("error", service=HETZNER, method="POST", path="^/v1/servers$", status=502)
    provider_api = adapter(HETZNER)
    sandbox.clear_requests()
    made = provider_api.create_server(request(HETZNER, snapshot_id))
    assert [s.id for s in named(sandbox, HETZNER, NAME)] == [int(made.id)]
    assert len(posts(sandbox, HETZNER)) == 2


def test_hetzner_a_name_someone_else_has_is_refused_not_adopted(sandbox, adapter):
    snapshot_id = snapshot_of(sandbox, HETZNER)
    sandbox.state.add_server(ACCOUNT[HETZNER], NAME, labels={"role": "app"})
    provider_api = adapter(HETZNER)
    with pytest.raises(ProviderError) as raised:
        provider_api.create_server(request(HETZNER, snapshot_id))
    assert raised.value.code == "uniqueness_error" and raised.value.refused
    assert len(named(sandbox, HETZNER, NAME)) == 1


def test_hetzner_a_server_limit_says_what_to_do(sandbox, adapter):
    snapshot_id = snapshot_of(sandbox, HETZNER)
    sandbox.inject(
        "error",
        service=HETZNER,
        method="POST",
        path="^/v1/servers$",
        status=403,
        patch={"error": {"code": "resource_limit_exceeded", "message": "limit"}},
    )
    with pytest.raises(ProviderError) as raised:
        adapter(HETZNER).create_server(request(HETZNER, snapshot_id))
    assert raised.value.message == SERVER_LIMIT and raised.value.status == 403


def test_hetzner_a_snapshot_limit_says_what_to_do(sandbox, adapter):
    sandbox.state.accounts[ACCOUNT[HETZNER]].snapshot_limit = 0
    with pytest.raises(ProviderError) as raised:
        adapter(HETZNER).start_snapshot(str(SOURCE[HETZNER]), "app-1-20261207030000", {})
    assert raised.value.code == "resource_limit_exceeded" and raised.value.no_snapshot
    assert raised.value.message == SNAPSHOT_LIMIT
    assert str(raised.value).startswith(
        f"hetzner start snapshot failed (HTTP 403): {SNAPSHOT_LIMIT} (request id "
    )


# -- the one server DELETE ---------------------------------------------------------------------


@BOTH
def test_our_drill_server_is_deleted_by_id_after_reading_it_again(sandbox, adapter, provider):
    snapshot_id = snapshot_of(sandbox, provider)
    provider_api = adapter(provider)
    made = provider_api.create_server(request(provider, snapshot_id))
    sandbox.clear_requests()
    provider_api.delete_drill_server(made, OWNER)
    assert named(sandbox, provider, NAME) == []
    # two requests, booting or not: the re-read by id, then the DELETE by id
    assert [r["method"] for r in sandbox.requests(provider)] == ["GET", "DELETE"]
    (sent,) = deletes(sandbox, provider)
    assert sent["path"].endswith(f"/{made.id}") and "tag_name" not in sent["query"]
    assert provider_api.drill_servers() == [] and provider_api.get_server(made.id) is None
    provider_api.delete_drill_server(made, OWNER)  # gone already: deleted


def _unmark(server, provider):
    server.labels, server.tags = {}, []


def _other_owner(server, provider):
    other = drill_server_labels(provider, "staging", "web", "1")
    if provider == DIGITALOCEAN:
        server.tags = list(other)
    else:
        server.labels = other


def _second_owner(server, provider):
    if provider == DIGITALOCEAN:
        server.tags = [*server.tags, "snapshot-policy-owner-staging"]
    else:
        server.labels = {**server.labels, "snapshot-policy/owner": "staging"}


def _renamed(server, provider):
    server.name = "db-1-copy"


@BOTH
@pytest.mark.parametrize(
    "change", [_unmark, _other_owner, _second_owner, _renamed], ids=lambda f: f.__name__[1:]
)
def test_a_server_that_is_no_longer_our_drill_server_is_never_deleted(
    sandbox, adapter, provider, change
):
    """The last line of defence: whatever the journal and the listing said, the server as
    read right before the DELETE decides; the DELETE is never sent, and it still exists."""
    snapshot_id = snapshot_of(sandbox, provider)
    provider_api = adapter(provider)
    made = provider_api.create_server(request(provider, snapshot_id))
    change(sandbox.state.servers[int(made.id)], provider)
    sandbox.clear_requests()
    with pytest.raises(Refused) as raised:
        provider_api.delete_drill_server(made, OWNER)
    assert raised.value.code == NOT_A_DRILL_SERVER and raised.value.refused
    assert deletes(sandbox, provider) == []
    assert int(made.id) in sandbox.state.servers


@BOTH
def test_a_fleet_server_handed_over_as_a_drill_server_is_never_deleted(sandbox, adapter, provider):
    """A bug upstream naming a real server (seeded: no marks) by its id and name is refused."""
    provider_api = adapter(provider)
    server_id = str(SOURCE[provider])
    fleet = provider_api.get_server(server_id)
    sandbox.clear_requests()
    with pytest.raises(Refused):
        provider_api.delete_drill_server(fleet, OWNER)
    with pytest.raises(Refused):  # with our marks claimed, but not on the server itself
        provider_api.delete_drill_server(
            MadeServer(
                server_id,
                fleet.name,
                "running",
                labels=drill_server_labels(provider, OWNER, "web", "1"),
            ),
            OWNER,
        )
    assert deletes(sandbox, provider) == [] and SOURCE[provider] in sandbox.state.servers


@BOTH
def test_a_delete_that_fails_for_a_while_is_retried_and_a_gone_server_is_deleted(
    sandbox, adapter, provider
):
    snapshot_id = snapshot_of(sandbox, provider)
    provider_api = adapter(provider)
    made = provider_api.create_server(request(provider, snapshot_id))
    sandbox.inject("error", service=provider, method="DELETE", status=503, count=1)
    provider_api.delete_drill_server(made, OWNER)
    assert named(sandbox, provider, NAME) == [] and len(deletes(sandbox, provider)) == 2


def test_digitalocean_a_snapshot_limit_is_a_refusal_not_a_busy_droplet(sandbox, adapter, sleeps):
    """DigitalOcean answers 422 both to a busy droplet and at the snapshot limit: only the
    first is asked again later (retry.ServerBusy)."""
    sandbox.state.accounts[ACCOUNT[DIGITALOCEAN]].snapshot_limit = 0
    with pytest.raises(ProviderError) as raised:
        adapter(DIGITALOCEAN).start_snapshot(str(SOURCE[DIGITALOCEAN]), "web-1-x", {})
    assert type(raised.value) is ProviderError and raised.value.status == 422
    assert "snapshot limit" in raised.value.message and raised.value.no_snapshot


@BOTH
def test_a_snapshot_id_that_is_no_number_is_refused_before_any_request(sandbox, adapter, provider):
    provider_api = adapter(provider)
    sandbox.clear_requests()
    with pytest.raises(Refused, match="is not a number"):
        provider_api.create_server(request(provider, "web-1-20261207030000"))
    assert sandbox.requests(provider) == []


@BOTH
@pytest.mark.parametrize("server_id", ["not-a-number", "None", ""])
def test_a_server_id_that_is_no_number_is_refused_before_any_request(
    sandbox, adapter, provider, sleeps, server_id
):
    """A journal entry edited or garbled names the server to read and delete: DigitalOcean
    raised ValueError (a traceback before apply's snapshots), Hetzner asked again and again
    for what can never be read. Refused at once, certain, and nothing sent."""
    provider_api = adapter(provider)
    sandbox.clear_requests()
    with pytest.raises(Refused, match="is not a number"):
        provider_api.get_server(server_id)
    made = MadeServer(server_id, NAME, "running")
    with pytest.raises(Refused, match="is not a number"):
        provider_api.delete_drill_server(made, OWNER)
    assert sandbox.requests(provider) == [] and sleeps == []


@BOTH
def test_the_boot_poll_lists_the_servers_even_when_their_actions_cannot_be_read(
    sandbox, adapter, provider
):
    """The listing is the poll; whether a create failed is asked again next round."""
    snapshot_id = snapshot_of(sandbox, provider)
    sandbox.inject("boot_fail", service=provider)
    provider_api = adapter(provider)
    made = provider_api.create_server(request(provider, snapshot_id))
    path = "^/v2/actions" if provider == DIGITALOCEAN else "^/v1/actions"
    sandbox.inject("error", service=provider, method="GET", path=path, status=403, count=None)
    assert [s.id for s in provider_api.drill_servers()] == [made.id]
    sandbox.clear_faults()
    assert until(provider_api, made.id, "failed").status == "failed"
