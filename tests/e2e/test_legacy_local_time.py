"""A legacy layout names its snapshots in the host's local time, as snapshots.py's
`datetime.now()` did, following daylight saving time; migrate writes the zone it used, so the
migrated policy names them alike wherever it runs (issue 21, item 5).

The clocks are fixed days, one in summer and one in winter, never today's date.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import yaml

from snapshot_policy import config
from snapshot_policy.cli import main
from snapshot_policy.config.migrate import migrate
from snapshot_policy.sandbox import Sandbox
from tests.e2e.cloud import DO_TOKEN, HZ_TOKEN, cloud, unwrapped
from tests.e2e.test_legacy_layout import plan_document
from tests.factories import FakeClock

SUMMER = datetime(2031, 7, 1, 10, 21, 1, tzinfo=timezone.utc)
WINTER = datetime(2031, 1, 15, 10, 21, 1, tzinfo=timezone.utc)


def folder(tmp_path):
    (tmp_path / "snapshots.config").write_text("[TIMING]\ndelay_between_servers = 0\n")
    configs = tmp_path / "configs"
    configs.mkdir()
    for file, wrapper, provider, server_id, name, token in (
        ("web.json", "digitalocean_droplet", "digitalocean", 3164444, "web-1", DO_TOKEN),
        ("db.json", "hetzner_cloud_server", "hetzner", 4711, "db-1", HZ_TOKEN),
    ):
        server = {"provider": provider, "id": server_id, "name": name, "api_token": token}
        server["retain_last_snapshots"] = 9
        (configs / file).write_text(json.dumps({wrapper: server}))
    return tmp_path


def made_names(tmp_path, monkeypatch, now: datetime) -> set[str]:
    """The names of the snapshots one `apply` of the folder makes at `now`."""
    clock = FakeClock(now)
    with Sandbox(cloud(now), action_seconds=0.05, clock=clock) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        before = {s["name"] for s in sb.dump_state()["snapshots"]}
        monkeypatch.chdir(folder(tmp_path))
        assert main(["apply"], clock=clock) == 0
        return {s["name"] for s in sb.dump_state()["snapshots"]} - before


@pytest.mark.parametrize(
    ("tz", "now", "stamp"),
    [
        ("Europe/Berlin", WINTER, "20310115112101"),  # CET, UTC+1: the issue's …112101
        ("Europe/Berlin", SUMMER, "20310701122101"),  # CEST, UTC+2
        ("America/New_York", WINTER, "20310115052101"),  # EST, UTC-5
        ("America/New_York", SUMMER, "20310701062101"),  # EDT, UTC-4
        (":Asia/Tokyo", SUMMER, "20310701192101"),  # glibc's `:name`
        ("UTC", SUMMER, "20310701102101"),
    ],
)
def test_a_legacy_layout_names_snapshots_in_the_hosts_local_time(
    tmp_path, monkeypatch, host_zone, capsys, tz, now, stamp
):
    host_zone(tz)
    assert made_names(tmp_path, monkeypatch, now) == {f"web-1-{stamp}", f"db-1-{stamp}"}


def test_migrate_writes_the_zone_it_named_in_and_the_policy_plans_alike_elsewhere(
    tmp_path, monkeypatch, host_zone, capsys
):
    clock = FakeClock(SUMMER)
    with Sandbox(cloud(SUMMER), action_seconds=0.05, clock=clock) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        layout = folder(tmp_path)
        host_zone("Europe/Berlin")
        monkeypatch.chdir(layout)
        assert main(["migrate", "--out", "snapshot-policy.yaml"], clock=clock) == 0
        capsys.readouterr()
        text = (layout / "snapshot-policy.yaml").read_text()
        assert yaml.safe_load(text)["timezone"] == "Europe/Berlin"
        legacy = config.load(legacy_config=layout / "snapshots.config", cwd=layout)
        legacy_plan = plan_document(legacy, clock.now)

        host_zone("America/New_York")  # the policy keeps Berlin wherever it runs
        env = {"DIGITALOCEAN_TOKEN_1": DO_TOKEN, "HCLOUD_TOKEN_1": HZ_TOKEN, **sb.env()}
        migrated = config.load(policy=layout / "snapshot-policy.yaml", env=env)
        assert migrated.errors == ()
        migrated_plan = plan_document(migrated, clock.now)
    assert migrated_plan == legacy_plan
    assert {t["create"]["name"] for t in migrated_plan["targets"]} == {
        "web-1-20310701122101",
        "db-1-20310701122101",
    }


def test_migrate_prints_the_zone_in_the_policy_it_writes(tmp_path, host_zone):
    host_zone("Asia/Tokyo")
    legacy = config.load(cwd=folder(tmp_path))
    text = migrate(legacy.document, legacy.base).text
    assert "\ntimezone: Asia/Tokyo\n" in text


@pytest.mark.parametrize("command", [["validate"], ["migrate"]])
def test_a_zone_without_a_name_is_said_without_v_as_names_fall_back_to_utc(
    tmp_path, monkeypatch, host_zone, capsys, command
):
    """snapshots.py followed a POSIX rule; names in UTC instead must not come as a surprise,
    nor a migrated `timezone: UTC`."""
    host_zone("CET-1CEST,M3.5.0,M10.5.0/3")
    monkeypatch.chdir(folder(tmp_path))
    assert main(command) == 0
    err = unwrapped(capsys.readouterr().err)
    assert "warning: TZ: 'CET-1CEST,M3.5.0,M10.5.0/3' is not an IANA time zone name" in err
