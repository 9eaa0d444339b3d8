"""Reading the clouds' server, size and server type replies into our words (no network: the
replies are the API's documented shapes; Hetzner's go through hcloud's own models)."""

from __future__ import annotations

import hcloud
import pytest
from hcloud.servers import BoundServer

from snapshot_policy.edges.providers import digitalocean, hetzner


def droplet(status="active", **extra):
    return {
        "id": 7,
        "name": "drill-web-101-20261207030000",
        "status": status,
        "created_at": "2026-12-07T03:00:00Z",
        "region": {"slug": "nyc3", "name": "New York 3"},
        "image": {"id": 9001},
        "tags": ["snapshot-policy-drill", "snapshot-policy-owner-prod"],
        "networks": {
            "v4": [
                {"ip_address": "10.10.0.7", "type": "private"},
                {"ip_address": "203.0.113.7", "type": "public"},
            ],
            "v6": [{"ip_address": "2001:db8::7", "type": "public"}],
        },
        **extra,
    }


@pytest.mark.parametrize(
    "status, ours",
    [
        ("new", "starting"),
        ("active", "running"),
        ("off", "off"),
        ("archive", "off"),
        ("x", "starting"),
    ],
)
def test_a_droplets_status_in_our_words(status, ours):
    assert digitalocean._made(droplet(status)).status == ours


def test_a_droplet_reads_whole():
    made = digitalocean._made(droplet())
    assert (made.id, made.region, made.image_id) == ("7", "nyc3", "9001")
    assert (made.private_ip, made.public_ip) == ("10.10.0.7", "203.0.113.7")
    assert made.labels == {"snapshot-policy-drill": "", "snapshot-policy-owner-prod": ""}
    assert made.created.isoformat() == "2026-12-07T03:00:00+00:00"


def test_a_droplet_without_public_ipv4_gives_its_ipv6_and_without_public_none():
    only_v6 = droplet(
        networks={
            "v4": [{"ip_address": "10.0.0.2", "type": "private"}],
            "v6": [{"ip_address": "2001:db8::7", "type": "public"}],
        }
    )
    assert digitalocean._made(only_v6).public_ip == "2001:db8::7"
    private = droplet(networks={"v4": [{"ip_address": "10.0.0.2", "type": "private"}]})
    assert digitalocean._made(private).public_ip is None


def test_a_create_reply_names_its_create_action():
    body = {
        "droplet": droplet("new"),
        "links": {"actions": [{"id": 36805096, "rel": "create", "href": "https://x/36805096"}]},
    }
    made, action_id = digitalocean._created(body)
    assert made.status == "starting" and action_id == 36805096
    assert digitalocean._created({"droplet": droplet("new"), "links": {}})[1] is None


def test_a_size_reads_whole():
    size = digitalocean._size_type(
        {
            "slug": "s-1vcpu-1gb",
            "disk": 25,
            "regions": ["nyc3", "ams3"],
            "price_hourly": 0.00893,
            "available": False,
        }
    )
    assert (size.name, size.disk_gb, size.regions, size.price_hourly) == (
        "s-1vcpu-1gb",
        25.0,
        ("nyc3", "ams3"),
        0.00893,
    )
    assert (size.currency, size.architecture, size.available) == ("USD", "x86", False)


def price(location, net):
    return {"location": location, "price_hourly": {"net": net, "gross": "1"}}


def server_type(**extra):
    return {
        "name": "cpx22",
        "disk": 80,
        "architecture": "arm",
        "deprecated": False,
        "deprecation": None,
        "prices": [price("fsn1", "0.0120"), price("hel1", "0.0130"), price("ash", "0.0150")],
        "locations": [
            {"name": "fsn1", "available": True, "deprecation": None},
            {"name": "hel1", "available": True, "deprecation": None},
            {"name": "ash", "available": False, "deprecation": None},
        ],
        **extra,
    }


def test_a_server_type_is_offered_where_it_is_available_at_its_dearest_price_there():
    kind = hetzner._server_type(server_type())
    assert (kind.name, kind.disk_gb, kind.architecture, kind.available) == (
        "cpx22",
        80,
        "arm",
        True,
    )
    assert kind.regions == ("fsn1", "hel1") and kind.price_hourly == 0.013
    assert kind.currency == "EUR"


def test_a_server_type_deprecated_anywhere_or_everywhere():
    here = server_type()
    here["locations"][1]["deprecation"] = {"announced": "x", "unavailable_after": "y"}
    assert hetzner._server_type(here).regions == ("fsn1",)
    assert not hetzner._server_type(server_type(deprecated=True)).available
    assert not hetzner._server_type(
        server_type(deprecation={"announced": "x", "unavailable_after": "y"})
    ).available


def test_a_server_type_from_an_older_reply_is_offered_where_it_is_priced():
    older = server_type()
    del older["locations"]
    assert hetzner._server_type(older).regions == ("ash", "fsn1", "hel1")


def test_a_servers_location_or_its_datacenters():
    assert hetzner._location_name({"location": {"name": "hel1"}}) == "hel1"
    assert hetzner._location_name({"datacenter": {"location": {"name": "nbg1"}}}) == "nbg1"
    assert hetzner._location_name({}) is None


def hetzner_server(status="running", ipv4=True, networks=()):
    data = {
        "id": 42,
        "name": "drill-web-301-20261207030000",
        "status": status,
        "created": "2026-12-07T03:00:00+00:00",
        "labels": {"snapshot-policy/drill": "true"},
        "location": {"id": 1, "name": "fsn1"},
        "image": {"id": 9001},
        "public_net": {
            "ipv4": {"id": 1, "ip": "198.51.100.4", "blocked": False, "dns_ptr": "x"}
            if ipv4
            else None,
            "ipv6": {"id": 2, "ip": "2001:db8:2a::/64", "blocked": False, "dns_ptr": []},
            "floating_ips": [],
        },
        "private_net": [
            {"network": n, "ip": f"10.0.0.{n}", "alias_ips": [], "mac_address": "x"}
            for n in networks
        ],
    }
    client = hcloud.Client("token", api_endpoint="http://127.0.0.1:1/v1")
    return hetzner._made((BoundServer(client.servers, data), None))


@pytest.mark.parametrize(
    "status, ours",
    [
        ("initializing", "starting"),
        ("starting", "starting"),
        ("running", "running"),
        ("stopping", "off"),
        ("off", "off"),
        ("rebuilding", "starting"),
        ("unknown", "starting"),
    ],
)
def test_a_hetzner_servers_status_in_our_words(status, ours):
    assert hetzner_server(status).status == ours


def test_a_hetzner_server_reads_whole():
    made = hetzner_server(networks=(5,))
    assert (made.id, made.region, made.image_id) == ("42", "fsn1", "9001")
    assert (made.private_ip, made.public_ip) == ("10.0.0.5", "198.51.100.4")
    assert made.created.isoformat() == "2026-12-07T03:00:00+00:00"
    assert hetzner_server(ipv4=False).public_ip == "2001:db8:2a::1"  # the network's first address
