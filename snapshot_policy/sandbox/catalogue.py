"""What servers the fake clouds can make: DigitalOcean sizes and Hetzner server types.

A small, realistic catalogue (names, disks, prices and places as the clouds list them in 2026)
with the cases a restore has to choose around: a size too small for most snapshots, sizes
that are not offered everywhere, an unavailable DigitalOcean size, a deprecated Hetzner type,
Arm types beside x86 ones, and a type sold out in one location. `GET /v2/sizes` and
`GET /v1/server_types` list it; a new server's disk, architecture and price come from it, and
so do the `min_disk_size`/`disk_size` and `architecture` of the snapshots made of a server.
"""

from __future__ import annotations

from dataclasses import dataclass

DO_ALL_REGIONS = ("ams3", "blr1", "fra1", "lon1", "nyc1", "nyc3", "sfo3", "sgp1", "syd1", "tor1")
HZ_LOCATIONS = ("fsn1", "hel1", "nbg1")


@dataclass(frozen=True)
class Size:
    """A DigitalOcean Droplet size (`size` schema)."""

    slug: str
    memory: int  # MiB
    vcpus: int
    disk: int  # GB
    transfer: float  # TB
    price_monthly: float
    price_hourly: float
    regions: tuple[str, ...]
    available: bool = True
    description: str = "Basic"


@dataclass(frozen=True)
class ServerType:
    """A Hetzner server type; `locations` maps a location to whether it can be ordered there
    now (a sold-out location is listed, `available: false`)."""

    id: int
    name: str
    cores: int
    memory: float  # GB
    disk: int  # GB
    price_hourly: str  # EUR, net
    price_monthly: str
    architecture: str = "x86"
    cpu_type: str = "shared"
    category: str = "regular_purpose"
    deprecated: bool = False
    locations: tuple[tuple[str, bool], ...] = tuple((name, True) for name in HZ_LOCATIONS)

    def orderable_in(self, location: str) -> bool:
        return not self.deprecated and dict(self.locations).get(location, False)


SIZES: dict[str, Size] = {
    size.slug: size
    for size in (
        Size("s-1vcpu-512mb-10gb", 512, 1, 10, 0.5, 4.0, 0.00595, ("ams3", "fra1", "nyc1", "sfo3")),
        Size("s-1vcpu-1gb", 1024, 1, 25, 1.0, 6.0, 0.00893, DO_ALL_REGIONS),
        Size("s-1vcpu-2gb", 2048, 1, 50, 2.0, 12.0, 0.01786, DO_ALL_REGIONS),
        Size("s-2vcpu-2gb", 2048, 2, 60, 3.0, 18.0, 0.02679, DO_ALL_REGIONS),
        Size("s-2vcpu-4gb", 4096, 2, 80, 4.0, 24.0, 0.03571, DO_ALL_REGIONS),
        Size(
            "s-4vcpu-8gb",
            8192,
            4,
            160,
            5.0,
            48.0,
            0.07143,
            ("ams3", "fra1", "lon1", "nyc1", "nyc3", "sfo3", "sgp1", "tor1"),
        ),
        Size(
            "c-2",
            4096,
            2,
            25,
            4.0,
            42.0,
            0.0625,
            ("ams3", "fra1", "nyc1", "nyc3", "sfo3"),
            description="CPU-Optimized",
        ),
        Size(
            "m-2vcpu-16gb", 16384, 2, 50, 4.0, 84.0, 0.125, (), False, "Memory-Optimized"
        ),  # unavailable: listed, offered nowhere
    )
}

SERVER_TYPES: dict[str, ServerType] = {
    kind.name: kind
    for kind in (
        ServerType(
            104, "cx22", 2, 4, 40, "0.0060", "3.7900", category="cost_optimized", deprecated=True
        ),
        ServerType(
            114,
            "cx23",
            2,
            4,
            40,
            "0.0056",
            "3.4900",
            category="cost_optimized",
            locations=(("fsn1", True), ("hel1", False), ("nbg1", True)),  # sold out in hel1
        ),
        ServerType(1, "cpx22", 2, 4, 80, "0.0120", "7.4900"),
        ServerType(2, "cpx32", 4, 8, 160, "0.0218", "13.4900"),
        ServerType(45, "cax11", 2, 4, 40, "0.0063", "3.7900", architecture="arm"),
        ServerType(93, "cax21", 4, 8, 80, "0.0104", "6.4900", architecture="arm"),
        ServerType(
            96, "ccx13", 2, 8, 80, "0.0224", "13.9900", cpu_type="dedicated", category="dedicated"
        ),
    )
}
SERVER_TYPES_BY_ID = {kind.id: kind for kind in SERVER_TYPES.values()}

DEFAULT_MACHINE_TYPE = {"digitalocean": "s-1vcpu-1gb", "hetzner": "cpx22"}


def disk_of(provider: str, machine_type: str) -> int:
    """The disk of a size or server type (GB); the default type's for an unknown name."""
    if provider == "digitalocean":
        return SIZES.get(machine_type, SIZES[DEFAULT_MACHINE_TYPE[provider]]).disk
    return SERVER_TYPES.get(machine_type, SERVER_TYPES[DEFAULT_MACHINE_TYPE[provider]]).disk


def architecture_of(provider: str, machine_type: str) -> str:
    if provider == "digitalocean":
        return "x86"
    return SERVER_TYPES.get(machine_type, SERVER_TYPES[DEFAULT_MACHINE_TYPE[provider]]).architecture
