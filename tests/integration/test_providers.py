"""The adapters through the real SDKs (pydo, hcloud) against the sandbox over HTTP."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from datetime import timedelta

import pytest

from snapshot_policy.core.model import (
    DIGITALOCEAN,
    HETZNER,
    Account,
    Price,
    ProviderError,
    RetentionPolicy,
    Target,
)
from snapshot_policy.core.ownership import marker_labels, snapshots_for
from snapshot_policy.edges.providers import connect, endpoint_for, paging
from snapshot_policy.edges.providers.retry import RetryPolicy, ServerBusy, Timing
from tests.integration.conftest import DO_TOKEN, HZ_TOKEN

TIMING = Timing(request_timeout=2, creation_timeout=5, poll_interval=0.02)
TIMING_WINDOW = timedelta(hours=1)


class Sleeps(list):
    """Records every wait the adapter asks for; waits only briefly for real."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        time.sleep(min(seconds, 0.02))


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def adapter(sandbox, sleeps):
    def make(provider: str, token: str | None = None, timing: Timing = TIMING):
        endpoint = (
            sandbox.digitalocean_endpoint if provider == DIGITALOCEAN else sandbox.hetzner_endpoint
        )
        default = DO_TOKEN if provider == DIGITALOCEAN else HZ_TOKEN
        account = Account("main", provider, token or default, endpoint)
        return connect(account, timing, RetryPolicy(sleep=sleeps, jitter=lambda: 0.5))

    return make


SERVERS = {DIGITALOCEAN: ("101", "web-1"), HETZNER: ("301", "app-1")}
BOTH = pytest.mark.parametrize("provider", [DIGITALOCEAN, HETZNER])


def target_for(provider: str) -> Target:
    server_id, server_name = SERVERS[provider]
    return Target("t", provider, "main", server_id, server_name, RetentionPolicy(keep_last=3))


def name_for(provider: str) -> str:
    return f"{SERVERS[provider][1]}-20261126030000"


def create_args(provider: str) -> tuple[str, str, dict[str, str]]:
    """What execute.py hands start_snapshot for `target_for(provider)`: server id, name, marker."""
    target = target_for(provider)
    return target.server_id, name_for(provider), marker_labels(target)


def create(provider_api, server_id: str, name: str, labels: dict[str, str]):
    """Start a snapshot and poll it as execute.py does until it is done: the snapshot made,
    or its error raised."""
    started = provider_api.start_snapshot(server_id, name, labels)
    deadline = time.monotonic() + TIMING.creation_timeout
    while time.monotonic() < deadline:
        result = provider_api.progress([started])[started]
        if isinstance(result, ProviderError):
            raise result
        if result is not None:
            return result
        time.sleep(0.02)
    raise TimeoutError(name)


def requests_to(sandbox, provider, method, fragment):
    return [
        r for r in sandbox.requests(provider) if r["method"] == method and fragment in r["path"]
    ]


@BOTH
def test_create_waits_marks_and_lists_the_new_snapshot_as_managed(sandbox, adapter, provider):
    provider_api = adapter(provider)
    target = target_for(provider)
    made = create(provider_api, *create_args(provider))
    assert (
        made.name == name_for(provider) and made.server_id == target.server_id and not made.creating
    )
    listed = {s.id: s for s in snapshots_for(target, provider_api.snapshots())}
    assert listed[made.id].managed, listed[made.id].ownership


@BOTH
def test_listed_snapshots_carry_the_size_billed(sandbox, adapter, provider):
    """DigitalOcean's size_gigabytes and Hetzner's image_size, not min_disk_size or disk_size;
    Hetzner's is null, so unknown, while an image is made."""
    account = "do-a" if provider == DIGITALOCEAN else "hz-a"
    server_id = int(SERVERS[provider][0])
    sandbox.state.add_snapshot(account, "sized", server_id=server_id, size_gigabytes=6.5)
    sandbox.state.servers[server_id].snapshot_size_gigabytes = 7.0
    provider_api = adapter(provider)
    assert {s.name: s.size_gb for s in provider_api.snapshots()} == {"sized": 6.5}
    made = create(provider_api, *create_args(provider))
    # Hetzner's image is the one its start returned, still without a size; the next listing has it.
    assert made.size_gb == (7.0 if provider == DIGITALOCEAN else None)
    assert {s.id: s.size_gb for s in provider_api.snapshots()}[made.id] == 7.0
    if provider == HETZNER:
        sandbox.state.add_snapshot(account, "being made", server_id=server_id, status="creating")
        assert {s.name: s.size_gb for s in provider_api.snapshots()}["being made"] is None
        started = provider_api.start_snapshot(SERVERS[provider][0], "app-1-20261127030000", {})
        assert (
            started.image is not None and started.image.creating and started.image.size_gb is None
        )


@BOTH
def test_delete_removes_and_a_second_delete_is_fine(sandbox, adapter, provider):
    provider_api = adapter(provider)
    made = create(provider_api, *create_args(provider))
    provider_api.delete_snapshot(made.id)
    assert made.id not in {s.id for s in provider_api.snapshots()}
    provider_api.delete_snapshot(made.id)


@BOTH
def test_listing_reads_every_page_once(sandbox, adapter, provider):
    count = 450 if provider == DIGITALOCEAN else 120
    account = "do-a" if provider == DIGITALOCEAN else "hz-a"
    server_id = int(SERVERS[provider][0])
    state = sandbox.dump_state()
    state["snapshots"] += [
        {"account": account, "server_id": server_id, "name": f"s{n}"} for n in range(count)
    ]
    sandbox.load_state(state)
    sandbox.clear_requests()
    listed = adapter(provider).snapshots()
    assert len([s for s in listed if s.server_id == str(server_id)]) == count
    pages = requests_to(
        sandbox, provider, "GET", "snapshots" if provider == DIGITALOCEAN else "/images"
    )
    assert len(pages) == (3 if provider == DIGITALOCEAN else 3)


# -- pages read at once (issue 13, item 5) --------------------------------------------------


def seed_pages(sandbox, provider: str) -> list[str]:
    """Give the account's first server 450 DigitalOcean snapshots (3 pages of 200) or 120
    Hetzner images (3 pages of 50); return every listed id in the sandbox's (id) order."""
    count = 450 if provider == DIGITALOCEAN else 120
    account = "do-a" if provider == DIGITALOCEAN else "hz-a"
    state = sandbox.dump_state()
    state["snapshots"] += [
        {"account": account, "server_id": int(SERVERS[provider][0]), "name": f"s{n}"}
        for n in range(count)
    ]
    sandbox.load_state(state)
    return [str(s.id) for s in sandbox.state.snapshots_of(sandbox.state.accounts[account])]


def watch_pages(
    monkeypatch, provider_api, provider: str, after_first=None, gate: bool = True
) -> threading.Barrier:
    """Wrap the SDK's list method the adapter reads pages with (each page still goes through
    the adapter's guard). With `gate`, the first request for each page after the first is held
    until another page's is too (a barrier of two, which a listing reading its pages one after
    another would break). `after_first()` runs once the first page is in."""
    barrier = threading.Barrier(
        2, timeout=20
    )  # released only by a second page; the timeout ends a serial read
    held: set[int] = set()
    holder, name = (
        (provider_api._client.snapshots, "list")
        if provider == DIGITALOCEAN
        else (provider_api._client.images, "get_list")
    )
    original = getattr(holder, name)

    def watched(*args, page, **kwargs):
        if gate and page > 1 and page not in held:
            held.add(page)
            barrier.wait()
        reply = original(*args, page=page, **kwargs)
        if page == 1 and after_first is not None:
            after_first()
        return reply

    monkeypatch.setattr(holder, name, watched)
    return barrier


def listing_pages(sandbox, provider: str) -> list[str]:
    return sorted(
        r["query"]["page"]
        for r in requests_to(
            sandbox, provider, "GET", "snapshots" if provider == DIGITALOCEAN else "/images"
        )
    )


LISTING_PATH = {DIGITALOCEAN: "/v2/snapshots", HETZNER: "/v1/images"}


@BOTH
def test_listing_pages_are_read_at_once_yet_each_once_and_in_order(
    sandbox, adapter, monkeypatch, provider
):
    ids = seed_pages(sandbox, provider)
    with monkeypatch.context() as one_at_a_time:
        one_at_a_time.setattr(paging, "PAGE_READERS", 1)
        serial = adapter(provider).snapshots()
    sandbox.clear_requests()
    provider_api = adapter(provider)
    barrier = watch_pages(monkeypatch, provider_api, provider)
    listed = provider_api.snapshots()
    assert not barrier.broken  # pages 2 and 3 were asked for at the same time
    assert listed == serial and [s.id for s in listed] == ids  # complete, in the listing's order
    assert listing_pages(sandbox, provider) == ["1", "2", "3"]  # each page once
    assert provider_api.requests == len(sandbox.requests(provider)) == 3  # every request counted


@BOTH
@pytest.mark.parametrize(
    "fault", [{"kind": "error", "status": 403}, {"kind": "garble"}], ids=["refused", "garbled"]
)
def test_a_failing_page_fails_the_listing_as_reading_page_by_page_does(
    sandbox, adapter, sleeps, monkeypatch, provider, fault
):
    seed_pages(sandbox, provider)

    def failure(readers: int) -> ProviderError:
        """The error of the listing when every page after the first fails."""
        sandbox.clear_faults()
        provider_api = adapter(provider)
        with monkeypatch.context() as patched, pytest.raises(ProviderError) as raised:
            patched.setattr(paging, "PAGE_READERS", readers)
            watch_pages(
                patched,
                provider_api,
                provider,
                lambda: sandbox.inject(
                    service=provider, path=LISTING_PATH[provider], count=None, **fault
                ),
                gate=readers > 1,
            )
            provider_api.snapshots()
        return raised.value

    def unnamed(error: ProviderError) -> str:
        """The message without the request id, which names one request of each."""
        assert error.request_id
        return str(error).removesuffix(f" (request id {error.request_id})")

    at_once, page_by_page = failure(4), failure(1)
    assert type(at_once) is type(page_by_page) and unnamed(at_once) == unnamed(page_by_page)
    assert (at_once.status, at_once.code, at_once.transient) == (
        page_by_page.status,
        page_by_page.code,
        page_by_page.transient,
    )
    assert sleeps == []  # neither a stated refusal nor a reply not understood is asked again


@BOTH
def test_a_page_that_fails_once_is_read_again_alone(
    sandbox, adapter, sleeps, monkeypatch, provider
):
    ids = seed_pages(sandbox, provider)
    provider_api = adapter(provider)
    watch_pages(
        monkeypatch,
        provider_api,
        provider,
        lambda: sandbox.inject("error", service=provider, path=LISTING_PATH[provider], status=503),
    )
    sandbox.clear_requests()
    assert [s.id for s in provider_api.snapshots()] == ids
    pages = listing_pages(sandbox, provider)
    assert (
        sorted(set(pages)) == ["1", "2", "3"] and len(pages) == 4
    )  # page 2 or 3 twice, nothing else again
    assert sleeps == [0.75] and provider_api.requests == 4


@BOTH
def test_servers_are_listed_whole_or_by_selector(adapter, provider):
    provider_api = adapter(provider)
    expected = (
        {"101": "web-1", "102": "web-2", "103": "db-1"}
        if provider == DIGITALOCEAN
        else {"301": "app-1", "302": "app-2", "303": "db-1"}
    )
    assert {s.id: s.name for s in provider_api.servers()} == expected  # never another account's
    selector = "web" if provider == DIGITALOCEAN else "env=prod,role!=db"
    selected = ["101", "102"] if provider == DIGITALOCEAN else ["301"]
    assert sorted(s.id for s in provider_api.servers(selector)) == selected


@BOTH
def test_another_accounts_snapshots_are_not_listed(adapter, provider):
    assert {"9201", "9401"}.isdisjoint(s.id for s in adapter(provider).snapshots())


@BOTH
def test_a_bad_token_is_a_clear_401(adapter, provider):
    with pytest.raises(ProviderError) as raised:
        adapter(provider, token="wrong").snapshots()
    assert raised.value.status == 401 and raised.value.provider == provider
    assert "wrong" not in str(raised.value)


@BOTH
def test_a_name_that_merely_contains_the_server_name_is_never_managed(sandbox, adapter, provider):
    account = "do-a" if provider == DIGITALOCEAN else "hz-a"
    server_id = int(SERVERS[provider][0])
    name = SERVERS[provider][1]
    state = sandbox.dump_state()
    state["servers"].append({"account": account, "id": 999, "name": name + "2"})
    state["snapshots"] += [
        {"account": account, "server_id": 999, "name": f"{name}2-20261125030000"},
        {"account": account, "server_id": server_id, "name": f"{name}-before-upgrade"},
        {"account": account, "server_id": server_id, "name": f"old-{name}-20261125030000"},
    ]
    sandbox.load_state(state)
    target = replace(target_for(provider), adopt_legacy_names=True)
    seen = snapshots_for(target, adapter(provider).snapshots())
    assert sorted(s.name for s in seen) == sorted(
        [f"{name}-before-upgrade", f"old-{name}-20261125030000"]
    )
    assert not any(s.managed for s in seen)


@BOTH
@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "rate_limit", "retry_after": 3},
        {"kind": "error", "status": 500},
        {"kind": "error", "status": 503},
        {"kind": "drop"},
    ],
)
def test_reads_survive_each_fault_kind(sandbox, adapter, sleeps, provider, fault):
    sandbox.inject(service=provider, method="GET", count=2, **fault)
    assert SERVERS[provider][0] in {s.id for s in adapter(provider).servers()}
    if fault["kind"] == "rate_limit":
        assert sleeps == [3, 3]  # as advised: DigitalOcean's Retry-After, Hetzner's RateLimit-Reset
    else:
        assert sleeps == [0.75, 1.5]  # backoff


@BOTH
def test_a_slow_reply_beyond_the_request_timeout_is_retried(sandbox, adapter, sleeps, provider):
    sandbox.inject("delay", service=provider, method="GET", seconds=1.5, count=1)
    assert adapter(provider, timing=replace(TIMING, request_timeout=0.5)).servers()
    assert len(sleeps) == 1


@BOTH
def test_deletes_survive_server_errors(sandbox, adapter, provider):
    provider_api = adapter(provider)
    made = create(provider_api, *create_args(provider))
    sandbox.inject("error", service=provider, method="DELETE", status=503, count=2)
    provider_api.delete_snapshot(made.id)
    assert made.id not in {s.id for s in provider_api.snapshots()}


@BOTH
def test_a_failed_action_is_an_error_and_leaves_no_managed_snapshot(sandbox, adapter, provider):
    sandbox.inject("fail_action", service=provider)
    provider_api = adapter(provider)
    with pytest.raises(ProviderError, match="failed|errored"):
        create(provider_api, *create_args(provider))
    managed = [
        s
        for s in snapshots_for(target_for(provider), provider_api.snapshots())
        if s.managed and not s.creating
    ]
    assert managed == []


@BOTH
@pytest.mark.parametrize(
    "fault", [{"kind": "error", "status": 500}, {"kind": "drop"}, {"kind": "lose_reply"}]
)
def test_a_create_with_a_lost_or_failed_reply_makes_exactly_one_snapshot(
    sandbox, adapter, provider, fault
):
    path = "/actions" if provider == DIGITALOCEAN else "create_image"
    sandbox.inject(service=provider, method="POST", path=path, count=1, **fault)
    provider_api = adapter(provider)
    made = create(provider_api, *create_args(provider))
    named = [s for s in provider_api.snapshots() if s.name == name_for(provider)]
    assert [s.id for s in named] == [made.id]


@BOTH
def test_one_account_listing_names_the_servers_making_a_snapshot(
    sandbox, adapter, do, hz, provider, clock
):
    sandbox.state.action_seconds = 2
    if provider == DIGITALOCEAN:
        do.droplet_actions.post(droplet_id=101, body={"type": "snapshot", "name": "manual"})
    else:
        from hcloud.servers import Server

        hz.servers.create_image(Server(id=301), description="manual", type="snapshot")
    sandbox.clear_requests()
    assert adapter(provider).busy_servers(clock() - TIMING_WINDOW) == {
        SERVERS[provider][0]: "snapshot"
    }
    assert len(sandbox.requests(provider)) == 1


@BOTH
def test_many_snapshots_are_polled_in_one_request(sandbox, adapter, provider, clock):
    """Three snapshots in flight cost one poll request a round, not three."""
    provider_api = adapter(provider)
    servers = ["101", "102", "103"] if provider == DIGITALOCEAN else ["301", "302", "303"]
    target = target_for(provider)
    provider_api.busy_servers(clock() - TIMING_WINDOW)
    started = [
        provider_api.start_snapshot(
            server, f"s-{server}", marker_labels(replace(target, server_id=server))
        )
        for server in servers
    ]
    sandbox.clear_requests()
    assert set(provider_api.progress(started).values()) == {None}
    assert [(r["method"], r["path"]) for r in sandbox.requests(provider)] == [
        ("GET", "/v2/actions" if provider == DIGITALOCEAN else "/v1/actions")
    ]
    time.sleep(sandbox.state.action_seconds + 0.05)
    done = provider_api.progress(started)
    assert sorted(s.name for s in done.values()) == sorted(f"s-{server}" for server in servers)
    listed = {s.id: s for s in provider_api.snapshots()}
    assert all(
        not listed[s.id].creating and set(marker_labels(target)) <= set(listed[s.id].labels)
        for s in done.values()
    )


def test_digitalocean_busy_droplet_is_refused_at_once_as_busy(sandbox, adapter, sleeps):
    """The executor asks a busy droplet again later; the adapter holds no thread waiting."""
    sandbox.inject(
        "error",
        service="digitalocean",
        method="POST",
        path="/droplets/101/actions",
        status=422,
        count=2,
    )
    with pytest.raises(ServerBusy):
        create(adapter(DIGITALOCEAN), *create_args(DIGITALOCEAN))
    statuses = [
        r["status"] for r in requests_to(sandbox, "digitalocean", "POST", "/droplets/101/actions")
    ]
    assert statuses == [422] and sleeps == []


def test_hetzner_locked_server_is_refused_at_once_as_busy(sandbox, adapter, hz, sleeps):
    """Locked by another action (here a snapshot the pre-check did not see): busy, not waited
    for."""
    sandbox.state.action_seconds = 0.3
    from hcloud.servers import Server

    hz.servers.create_image(Server(id=301), description="manual", type="snapshot")
    with pytest.raises(ServerBusy):
        create(adapter(HETZNER), *create_args(HETZNER))
    statuses = [
        r["status"]
        for r in requests_to(sandbox, "hetzner", "POST", "/servers/301/actions/create_image")
    ]
    assert statuses == [201, 423] and sleeps == []


def test_hetzner_protected_snapshot_is_refused_not_retried(sandbox, adapter, sleeps):
    state = sandbox.dump_state()
    state["snapshots"].append(
        {"account": "hz-a", "id": 7777, "server_id": 301, "name": "pinned", "protected": True}
    )
    sandbox.load_state(state)
    with pytest.raises(ProviderError) as raised:
        adapter(HETZNER).delete_snapshot("7777")
    assert raised.value.status == 423 and sleeps == []
    assert next(s for s in adapter(HETZNER).snapshots() if s.id == "7777").protected


def test_endpoint_comes_from_the_account_then_the_environment(monkeypatch):
    monkeypatch.setenv("DIGITALOCEAN_API_URL", "http://127.0.0.1:9/")
    monkeypatch.delenv("HCLOUD_ENDPOINT", raising=False)
    assert endpoint_for(Account("a", DIGITALOCEAN, "t")) == "http://127.0.0.1:9"
    assert (
        endpoint_for(Account("a", DIGITALOCEAN, "t", "https://do.example")) == "https://do.example"
    )
    assert endpoint_for(Account("a", HETZNER, "t")) == "https://api.hetzner.cloud/v1"


def test_plain_http_off_this_machine_is_refused():
    with pytest.raises(ValueError, match="clear text"):
        connect(Account("a", HETZNER, "t", "http://api.example.com/v1"))


@BOTH
def test_every_http_request_is_counted(sandbox, adapter, provider):
    provider_api = adapter(provider)
    sandbox.clear_requests()
    provider_api.snapshots()
    provider_api.servers()
    assert provider_api.requests == len(sandbox.requests(provider)) >= 2


# -- rate-limit advice (issue 12, item 9) ---------------------------------------------------


@pytest.mark.parametrize(
    "provider, headers",
    [
        (DIGITALOCEAN, None),  # retry-after, as DigitalOcean sends it
        (HETZNER, None),  # RateLimit-Reset only, as Hetzner documents it
        (HETZNER, {"Retry-After": "8"}),  # a Retry-After, should Hetzner (or a proxy) send one
    ],
    ids=["digitalocean-retry-after", "hetzner-ratelimit-reset", "hetzner-retry-after"],
)
def test_a_rate_limit_is_waited_out_exactly_as_advised(sandbox, adapter, sleeps, provider, headers):
    sandbox.inject(
        "rate_limit", service=provider, method="GET", count=3, retry_after=8, headers=headers
    )
    assert adapter(provider).servers()
    assert sleeps == [8, 8, 8]


# -- renamed droplets (issue 12, item 10) ---------------------------------------------------


def test_a_renamed_droplet_keeps_its_tagged_snapshots_but_not_old_legacy_names(sandbox, adapter):
    provider_api = adapter(DIGITALOCEAN)
    made = create(provider_api, *create_args(DIGITALOCEAN))
    state = sandbox.dump_state()
    state["snapshots"].append(
        {"account": "do-a", "server_id": 101, "name": "web-1-20261120030000"}
    )  # snapshots.py's, untagged
    next(s for s in state["servers"] if s["id"] == 101)["name"] = "web-renamed"
    sandbox.load_state(state)
    server = next(s for s in provider_api.servers() if s.id == "101")
    assert server.name == "web-renamed"
    target = replace(target_for(DIGITALOCEAN), server_name=server.name, adopt_legacy_names=True)
    seen = {s.name: s for s in snapshots_for(target, provider_api.snapshots())}
    assert seen[made.name].managed, seen[made.name].ownership
    assert not seen["web-1-20261120030000"].managed  # its name no longer proves anything


# -- replies that cannot be understood (issue 12, items 5 and 11) ----------------------------


class DebugLog(list):
    """Collects the providers' log records, DEBUG included (pytest's log capture is off)."""

    def __init__(self):
        super().__init__()
        self.handler = logging.Handler(logging.DEBUG)
        self.handler.emit = self.append
        self.logger = logging.getLogger("snapshot_policy.edges.providers")
        self.level = self.logger.level

    def __enter__(self):
        self.logger.addHandler(self.handler)
        self.logger.setLevel("DEBUG")
        return self

    def __exit__(self, *exc_info):
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self.level)


@pytest.mark.parametrize(
    "provider, surprise, listing, error_type",
    [
        (HETZNER, "extra pagination key", "servers", "TypeError"),
        (HETZNER, "extra pagination key", "snapshots", "TypeError"),
        (HETZNER, "ipv6 without prefix", "servers", "IndexError"),
        (DIGITALOCEAN, "no snapshots key", "snapshots", "KeyError"),
        (DIGITALOCEAN, "links not an object", "servers", "AttributeError"),
    ],
)
def test_a_listing_the_sdk_cannot_read_is_a_clear_provider_error(
    sandbox, adapter, sleeps, provider, surprise, listing, error_type
):
    if surprise == "extra pagination key":  # the OpenAPI description leaves meta.pagination open
        sandbox.inject(
            "patch",
            service=provider,
            method="GET",
            count=None,
            patch={"meta": {"pagination": {"total_pages": 1}}},
        )
    elif surprise == "ipv6 without prefix":  # `ip` is any string in the OpenAPI description
        sandbox.state.servers[301].ipv6 = "2001:db8::1"
    elif surprise == "no snapshots key":
        sandbox.inject(
            "patch", service=provider, method="GET", count=None, patch={"snapshots": None}
        )
    else:
        sandbox.inject("patch", service=provider, method="GET", count=None, patch={"links": "none"})
    operation = {
        "servers": "list droplets" if provider == DIGITALOCEAN else "list servers",
        "snapshots": "list snapshots",
    }[listing]
    with DebugLog() as records, pytest.raises(ProviderError) as raised:
        getattr(adapter(provider), listing)()
    message = str(raised.value)
    assert message.startswith(
        f"{provider} {operation} failed (HTTP 200): "
        f"the API's reply could not be understood ({error_type}"
    )
    assert "Traceback" not in message and raised.value.transient
    assert sleeps == []  # the same request would be answered the same way
    debug = [r for r in records if r.levelname == "DEBUG" and r.exc_info]
    assert (
        len(debug) == 1 and debug[0].exc_info[0].__name__ == error_type
    )  # the traceback, for the debug log only
    assert not [r for r in records if r.levelname != "DEBUG" and r.exc_info]


@BOTH
def test_a_garbled_reply_to_a_read_is_not_understood(sandbox, adapter, provider):
    sandbox.inject("garble", service=provider, method="GET")
    with pytest.raises(ProviderError) as raised:
        adapter(provider).snapshots()
    assert raised.value.status == 200 and raised.value.transient
    assert "could not be understood" in str(raised.value)


@BOTH
def test_a_refusal_without_the_apis_error_body_is_not_certain(sandbox, adapter, provider):
    body = {"id": None, "message": None} if provider == DIGITALOCEAN else {"error": None}
    sandbox.inject("error", service=provider, method="GET", status=403, patch=body)
    with pytest.raises(ProviderError) as raised:
        adapter(provider).snapshots()
    assert raised.value.status == 403 and raised.value.transient
    assert "error body" in str(raised.value)


@BOTH
def test_a_stated_refusal_stays_certain(sandbox, adapter, provider):
    sandbox.inject("error", service=provider, method="GET", status=403)
    with pytest.raises(ProviderError) as raised:
        adapter(provider).snapshots()
    assert raised.value.status == 403 and not raised.value.transient


@BOTH
@pytest.mark.parametrize(
    "fault",
    [{"kind": "error", "status": 403}, {"kind": "error", "status": 502}, {"kind": "garble"}],
    ids=["refused", "server-error", "garbled"],
)
def test_a_failure_names_the_request_for_a_support_ticket(sandbox, adapter, provider, fault):
    """Hetzner's X-Correlation-Id and DigitalOcean's request_id (its body's, else its
    x-request-id header), read through the real SDK, end the message."""
    sandbox.inject(service=provider, method="GET", count=None, **fault)
    with pytest.raises(ProviderError) as raised:
        adapter(provider).snapshots()
    request_id = raised.value.request_id
    assert request_id and str(raised.value).endswith(f" (request id {request_id})")


@BOTH
@pytest.mark.parametrize(
    "fault",
    [{"kind": "garble"}, {"kind": "patch", "patch": {"action": None}}],
    ids=["garbled", "no-action"],
)
def test_a_create_whose_201_cannot_be_understood_is_found_not_refused(
    sandbox, adapter, sleeps, provider, fault
):
    path = "/actions" if provider == DIGITALOCEAN else "create_image"
    sandbox.inject(service=provider, method="POST", path=path, count=1, **fault)
    provider_api = adapter(provider)
    made = create(provider_api, *create_args(provider))
    assert [s.id for s in provider_api.snapshots() if s.name == name_for(provider)] == [made.id]
    assert len(requests_to(sandbox, provider, "POST", path)) == 1  # looked for, not started again


def test_hetzner_create_that_cannot_be_understood_nor_found_stays_uncertain(sandbox, adapter):
    sandbox.inject("garble", service=HETZNER, method="POST", path="create_image")
    sandbox.inject("garble", service=HETZNER, method="GET", path="/images$", count=None)
    with pytest.raises(ProviderError) as raised:
        create(adapter(HETZNER), *create_args(HETZNER))
    assert (
        raised.value.transient
    )  # execute.py keeps the name pending: a later run adopts the snapshot


@BOTH
def test_an_action_status_the_api_does_not_document_is_not_a_certain_failure(
    sandbox, adapter, provider
):
    sandbox.state.action_seconds = 2
    provider_api = adapter(provider)
    started = provider_api.start_snapshot(*create_args(provider))
    action = {
        "id": int(started.action_id),
        "status": "paused",
        "type": "snapshot",
        "command": "create_image",
        "started_at": "2026-11-26T03:00:00Z",
    }
    sandbox.inject(
        "patch",
        service=provider,
        method="GET",
        path=r"^/v\d/actions$",
        count=None,
        patch={"actions": [action]},
    )
    with pytest.raises(ProviderError) as raised:
        provider_api.progress([started])
    assert raised.value.transient and "action status 'paused'" in str(raised.value)


def test_prices_come_from_hetzners_price_list_net_in_the_projects_currency(sandbox, adapter):
    """`GET /v1/pricing` through hcloud (issue 23, item 3): the net image price, read once;
    DigitalOcean has no price endpoint."""
    state = sandbox.dump_state()
    for account in state["accounts"]:
        if account["name"] == "hz-a":
            account["pricing"] = {"currency": "USD", "image": "0.0171", "vat_rate": "21.00"}
    sandbox.load_state(state)
    sandbox.clear_requests()
    assert adapter(HETZNER).prices() == Price(0.0171, "USD")
    assert [r["path"] for r in sandbox.requests()] == ["/v1/pricing"]
    assert adapter(DIGITALOCEAN).prices() is None
    assert sandbox.requests("digitalocean") == []


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "error", "status": 503},
        {"kind": "patch", "patch": {"pricing": {"image": None}}},
        {"kind": "patch", "patch": {"pricing": {"currency": "euro"}}},
    ],
)
def test_a_price_list_that_cannot_be_read_raises_at_once(sandbox, adapter, sleeps, fault):
    sandbox.inject(**fault, service="hetzner", path="^/v1/pricing$")
    with pytest.raises(ProviderError) as raised:
        adapter(HETZNER).prices()
    assert raised.value.operation == "read prices"
    assert len(sandbox.requests("hetzner")) == 1  # once: a plan falls back, it does not wait
