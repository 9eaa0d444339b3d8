"""snapshot-policy: declarative snapshots for DigitalOcean Droplets and Hetzner Cloud servers."""

__version__ = "0.1.0"
