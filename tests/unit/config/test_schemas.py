"""The schemas and the validator's messages: every kind of mistake in the sentence a user reads."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from snapshot_policy.config.problems import Problem
from snapshot_policy.config.schemas import coerce_ini, load_schema, schema_dir, validate
from snapshot_policy.config.sources import Source, read_yaml

SCHEMAS = ["policy", "legacy-server", "legacy-config"]

SERVER = {
    "digitalocean_droplet": {
        "provider": "digitalocean",
        "id": "3164444",
        "name": "web-1",
        "api_token": "dop_v1_abc",
        "retain_last_snapshots": 3,
        "telegram": {
            "enabled": True,
            "bot_token": "123:abc",
            "chat_id": -1001234567890,
            "message_success": "*OK* {server_name}",
            "message_failure": "*FAILED* {server_name}",
        },
        "webhook": {
            "enabled": True,
            "url": "https://hooks.example.com/snap",
            "payload_success": {
                "server": "{server_name}",
                "nested": {"total": "{total_snapshots}"},
            },
            "payload_failure": {"server": "{server_name}"},
        },
    }
}

CONFIG = {
    "DIRECTORIES": {"configs_dir": "configs", "logs_dir": "logs"},
    "FILES": {"log_file": "snapshots.log", "lock_file": "snapshots.lock"},
    "TIMING": {"delay_between_servers": 20, "snapshot_creation_timeout": 3600},
    "LOGGING": {"max_bytes": 5242880, "backup_count": 5, "level": "DEBUG"},
    "TELEGRAM": {
        "enabled": True,
        "bot_token": "",
        "chat_id": "",
        "timeout": 10,
        "retries": 3,
        "base_delay_between_retries": 2,
        "message_success": "*OK*\\n{server_name}",
        "message_failure": "*FAILED*\\n{server_name}",
    },
    "WEBHOOK": {
        "enabled": False,
        "url": "https://hooks.example.com/snap",
        "timeout": 10,
        "retries": 3,
        "base_delay_between_retries": 2.5,
        "payload_success": '{"server": "{server_name}"}',
        "payload_failure": '{"server": "{server_name}"}',
    },
}

POLICY = {
    "version": 1,
    "timezone": "Europe/Berlin",
    "accounts": {
        "hetzner-prod": {
            "provider": "hetzner",
            "token": "env:HCLOUD_TOKEN",
            "endpoint": "https://api.hetzner.cloud/v1",
        },
        "do.prod_2": {"provider": "digitalocean", "token": "file:/etc/snapshot-policy/do-token"},
        "do-literal": {
            "provider": "digitalocean",
            "token": "dop_v1_literal",
            "snapshot_limit": 200,
        },
        "from-env": {"provider": "hetzner"},
    },
    "notifications": {
        "ops": {
            "type": "telegram",
            "bot_token": "env:TELEGRAM_BOT_TOKEN",
            "chat_id": -1001234567890,
            "message_success": "OK {server_name}",
            "message_failure": "FAILED {server_name}",
            "timeout": 5.5,
            "retries": 0,
            "base_delay_between_retries": 0,
            "summary": True,
        },
        "n8n": {
            "type": "webhook",
            "url": "https://n8n.example.com/webhook/snapshots",
            "secret": "env:WEBHOOK_SECRET",
            "payload_success": {"server": "{server_name}"},
            "payload_failure": {"server": "{server_name}", "status": "{status}"},
            "timeout": 10,
            "retries": 3,
            "base_delay_between_retries": 2,
            "headers": {"X-Team": "ops"},
        },
    },
    "defaults": {
        "schedule": {"cron": "0 3 * * *"},
        "retention": {"keep_daily": 7, "keep_weekly": 4},
        "safety": {"max_deletions": 10},
        "snapshot_name": "{server_name}-{timestamp}",
        "timezone": "UTC",
        "notify": ["ops"],
        "adopt_legacy_names": False,
    },
    "targets": [
        {
            "name": "web",
            "account": "hetzner-prod",
            "ids": [4711, "4712"],
            "schedule": {"every": "1d12h"},
        },
        {
            "name": "db",
            "account": "do.prod_2",
            "names": ["db-1"],
            "notify": ["ops", "n8n"],
            "adopt_legacy_names": True,
        },
        {
            "name": "fleet",
            "account": "hetzner-prod",
            "label_selector": "role=app,env=prod",
            "retention": {
                "keep_last": 2,
                "keep_hourly": 24,
                "keep_daily": 7,
                "keep_weekly": 4,
                "keep_monthly": 12,
                "keep_yearly": 3,
                "keep_within": "1y6m",
                "keep_within_hourly": "2d",
                "keep_within_daily": "14d",
                "keep_within_weekly": "2m",
                "keep_within_monthly": "1y",
                "keep_within_yearly": "10y",
                "keep_verified": 2,
            },
            "drill": {
                "every": "2w",
                "probe": ["/usr/local/bin/check-restore", "--port", "5432"],
                "probe_timeout": 120,
                "boot_timeout": 600.5,
                "public_network": False,
                "networks": [4711, "4712"],
                "machine_type": "cx22",
                "env": ["PGPASSWORD"],
            },
            "safety": {"max_deletions": 0},
            "snapshot_name": "{target}-{server_id}-{timestamp}",
            "timezone": "America/New_York",
        },
    ],
    "orphans": {"keep_last": 3},
    "settings": {
        "lock_file": "/run/lock/snapshot-policy.lock",
        "log": {"file": "snapshot-policy.log", "max_bytes": 0, "backup_count": 5, "level": "INFO"},
        "audit_log": "audit.jsonl",
        "snapshot_creation_timeout": 7200,
        "request_timeout": 30.5,
        "delay_between_servers": 0,
        "parallel": 8,
        "drills_per_account": 3,
        "uncovered": {
            "ignore": [{"ids": [1, "2"]}, {"names": ["bastion"]}, {"label_selector": "backup=none"}]
        },
        "healthcheck_url": "https://hc-ping.com/abc",
        "prices": {
            "digitalocean": {"per_gb_month": 0.06, "currency": "USD"},
            "hetzner": {"per_gb_month": 0.0143},
        },
    },
}

EXAMPLES = {"policy": POLICY, "legacy-server": SERVER, "legacy-config": CONFIG}


def messages(data, schema: str) -> list[str]:
    """Check `data` without a file behind it: each problem as `path: message`."""
    return [str(p).removeprefix("f: ") for p in validate(data, schema, Source("f", data))]


def changed(example: dict, path: tuple, value) -> dict:
    """A deep copy of `example` with the key at `path` set to `value` (or removed, for ...)."""
    data = copy.deepcopy(example)
    *parents, last = path
    node = data
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_is_a_valid_draft_2020_12_schema(name):
    schema = load_schema(name)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)


def _object_schemas(node, where=""):
    if isinstance(node, dict):
        if "properties" in node:
            yield where, node
        for key, value in node.items():
            yield from _object_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _object_schemas(value, f"{where}/{index}")


@pytest.mark.parametrize("name", SCHEMAS)
def test_schema_documents_every_property_and_rejects_unknown_keys(name):
    root = load_schema(name)
    for where, schema in _object_schemas(root):
        for key, prop in schema["properties"].items():
            documented = prop.get("description") or root["$defs"][prop["$ref"].split("/")[-1]].get(
                "description"
            )
            assert documented, f"{where}/properties/{key} has no description"
        # A schema beside a $ref only adds constraints; the $ref'd one closes the object.
        assert schema.get("additionalProperties") is False or "$ref" in schema, (
            f"{where} accepts unknown keys"
        )


@pytest.mark.parametrize("name", SCHEMAS)
def test_a_full_example_of_each_format_is_valid(name):
    assert messages(EXAMPLES[name], name) == []


def test_the_hetzner_wrapper_is_valid_too():
    server = copy.deepcopy(SERVER["digitalocean_droplet"]) | {"provider": "hetzner", "id": 4711}
    assert messages({"hetzner_cloud_server": server}, "legacy-server") == []


def test_the_legacy_config_schema_carries_the_legacy_defaults():
    sections = load_schema("legacy-config")["properties"]
    defaults = {
        (s, k): p["default"]
        for s, section in sections.items()
        for k, p in section["properties"].items()
        if "default" in p
    }
    assert defaults == {
        ("DIRECTORIES", "configs_dir"): "configs",
        ("DIRECTORIES", "logs_dir"): "logs",
        ("FILES", "log_file"): "snapshots.log",
        ("FILES", "lock_file"): "snapshots.lock",
        ("TIMING", "delay_between_servers"): 5,  # its code's, not its manual's 20
        ("TIMING", "snapshot_creation_timeout"): 900,
        ("LOGGING", "max_bytes"): 5242880,
        ("LOGGING", "backup_count"): 5,
        ("LOGGING", "level"): "DEBUG",
        ("TELEGRAM", "enabled"): True,
        ("TELEGRAM", "timeout"): 10,
        ("TELEGRAM", "retries"): 3,
        ("TELEGRAM", "base_delay_between_retries"): 2,
        ("WEBHOOK", "enabled"): False,
        ("WEBHOOK", "timeout"): 10,
        ("WEBHOOK", "retries"): 3,
        ("WEBHOOK", "base_delay_between_retries"): 2,
    }


@pytest.mark.parametrize(
    "schema, path, value, expected",
    [
        # missing required key
        (
            "legacy-server",
            ("digitalocean_droplet", "api_token"),
            ...,
            "digitalocean_droplet: missing required key 'api_token'",
        ),
        ("policy", ("version",), ..., "missing required key 'version'"),
        # unknown keys, with a suggestion where one is close
        (
            "legacy-server",
            ("digitalocean_droplet", "retain_last_snapshot"),
            3,
            "digitalocean_droplet: unknown key 'retain_last_snapshot'; did you mean "
            "'retain_last_snapshots'?",
        ),
        ("legacy-config", ("telegram",), {}, "unknown key 'telegram'; did you mean 'TELEGRAM'?"),
        (
            "policy",
            ("targets", 2, "retention", "keep_dialy"),
            7,
            "targets[2].retention: unknown key 'keep_dialy'; did you mean 'keep_daily'?",
        ),
        (
            "policy",
            ("settings", "log", "colour"),
            True,
            "settings.log: unknown key 'colour'; expected file, max_bytes, backup_count or level",
        ),
        # wrong type
        (
            "legacy-server",
            ("digitalocean_droplet", "retain_last_snapshots"),
            "3",
            "digitalocean_droplet.retain_last_snapshots: must be an integer, not the string '3'",
        ),
        (
            "legacy-server",
            ("digitalocean_droplet", "telegram", "enabled"),
            "yes",
            "digitalocean_droplet.telegram.enabled: must be true or false, not the string 'yes'",
        ),
        (
            "legacy-server",
            ("digitalocean_droplet", "telegram", "chat_id"),
            1.5,
            "digitalocean_droplet.telegram.chat_id: must be a string or an integer, not the "
            "number 1.5",
        ),
        (
            "policy",
            ("targets", 0, "retention"),
            7,
            "targets[0].retention: must be an object, not the number 7",
        ),
        (
            "policy",
            ("defaults", "notify"),
            "ops",
            "defaults.notify: must be a list, not the string 'ops'",
        ),
        (
            "policy",
            ("orphans", "keep_last"),
            None,
            "orphans.keep_last: must be an integer, not an empty value",
        ),
        (
            "policy",
            ("settings", "parallel"),
            True,
            "settings.parallel: must be an integer, not true",
        ),
        # out of range
        (
            "legacy-server",
            ("digitalocean_droplet", "retain_last_snapshots"),
            -2,
            "digitalocean_droplet.retain_last_snapshots: must be 0 or more, not -2",
        ),
        ("policy", ("orphans", "keep_last"), 0, "orphans.keep_last: must be 1 or more, not 0"),
        (
            "policy",
            ("settings", "request_timeout"),
            0,
            "settings.request_timeout: must be more than 0, not 0",
        ),
        (
            "legacy-config",
            ("TELEGRAM", "timeout"),
            -1.5,
            "TELEGRAM.timeout: must be more than 0, not -1.5",
        ),
        # enum and const
        (
            "policy",
            ("accounts", "hetzner-prod", "provider"),
            "aws",
            "accounts.hetzner-prod.provider: must be one of digitalocean, hetzner, not 'aws'",
        ),
        (
            "legacy-config",
            ("LOGGING", "level"),
            "LOUD",
            "LOGGING.level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'LOUD'",
        ),
        ("policy", ("version",), 2, "version: must be 1, not 2"),
        ("policy", ("version",), None, "version: must be 1, not an empty value"),
        (
            "legacy-server",
            ("digitalocean_droplet", "provider"),
            "hetzner",
            "digitalocean_droplet.provider: must be 'digitalocean' inside "
            "digitalocean_droplet, not 'hetzner'",
        ),
        # pattern: the expected form comes from the schema's description
        (
            "policy",
            ("targets", 0, "schedule", "every"),
            "1 day",
            "targets[0].schedule.every: '1 day' is not in the expected form: a duration in "
            "hours, days or weeks such as 12h, 24h, 7d or 2w, or combined such as 1d12h",
        ),
        (
            "policy",
            ("targets", 0, "schedule", "every"),
            "1m",
            "targets[0].schedule.every: '1m' is not in the expected form: a duration in "
            "hours, days or weeks such as 12h, 24h, 7d or 2w, or combined such as 1d12h",
        ),
        (
            "policy",
            ("targets", 2, "retention", "keep_within_daily"),
            "7 days",
            "targets[2].retention.keep_within_daily: '7 days' is not in the expected form: a "
            "duration in hours, days, weeks, months or years "
            "such as 36h, 7d, 2w, 3m or 1y, or combined such as 1y6m",
        ),
        (
            "policy",
            ("accounts", "hetzner-prod", "token"),
            "env:",
            "accounts.hetzner-prod.token: 'env:' is not in the expected form: a secret: the "
            "value itself, env:NAME to read it from an environment variable, "
            "or file:PATH to read it from a file (relative to the policy file)",
        ),
        (
            "policy",
            ("targets", 0, "ids", 1),
            "web-1",
            "targets[0].ids[1]: 'web-1' is not in the expected form: a server id: a positive "
            "number or a string of up to 19 digits",
        ),
        (
            "legacy-server",
            ("digitalocean_droplet", "id"),
            "your-droplet-id",
            "digitalocean_droplet.id: 'your-droplet-id' is not in the expected form: the "
            "server's numeric id, as a number or a string of up to 19 digits",
        ),
        (
            "policy",
            ("accounts", "my account"),
            {"provider": "hetzner"},
            "accounts: the name 'my account' is not in the expected form: a name of letters, "
            "digits, '_', '.' and '-' that starts with a letter or digit, such as "
            "hetzner-prod",
        ),
        # sizes
        (
            "legacy-server",
            ("digitalocean_droplet", "name"),
            "",
            "digitalocean_droplet.name: must not be empty",
        ),
        ("policy", ("targets",), [], "targets: must list at least one item"),
        ("policy", ("accounts",), {}, "accounts: must have at least one entry"),
        (
            "policy",
            ("targets", 1, "notify"),
            ["ops", "ops"],
            "targets[1].notify: lists the same item more than once",
        ),
    ],
)
def test_each_mistake_gets_its_sentence(schema, path, value, expected):
    assert messages(changed(EXAMPLES[schema], path, value), schema) == [expected]


@pytest.mark.parametrize(
    "target_change, expected",
    [
        (
            {"names": ["web-1"]},
            "targets[0]: give only one of ids, names or label_selector (found ids and names)",
        ),
        ({"ids": ...}, "targets[0]: missing one of the keys ids, names or label_selector"),
        (
            {"schedule": {"every": "1d", "cron": "0 3 * * *"}},
            "targets[0].schedule: give only one of every or cron (found every and cron)",
        ),
        ({"schedule": {}}, "targets[0].schedule: missing one of the keys every or cron"),
    ],
)
def test_exactly_one_of_several_keys(target_change, expected):
    data = copy.deepcopy(POLICY)
    for key, value in target_change.items():
        data = changed(data, ("targets", 0, key), value)
    assert messages(data, "policy") == [expected]


@pytest.mark.parametrize(
    "channel, expected",
    [
        # The type says which alternative was meant, so its own errors are the ones shown.
        (
            {"type": "telegram", "bot_token": "x", "chat_id": 1, "timout": 3},
            ["notifications.ops: unknown key 'timout'; did you mean 'timeout'?"],
        ),
        (
            {"type": "webhook", "url": "https://x.example", "summary": True},
            [
                "notifications.ops: unknown key 'summary'; expected type, url, "
                "allow_plain_http, secret, payload_success, payload_failure, timeout, retries, "
                "base_delay_between_retries, style, script or headers"
            ],
        ),
        (
            {"type": "webhook", "url": "https://x.example", "retries": -1},
            ["notifications.ops.retries: must be 0 or more, not -1"],
        ),
        (
            {"type": "telegram", "chat_id": 1},
            ["notifications.ops: missing required key 'bot_token'"],
        ),
        (
            {"type": "webhook", "url": "ftp://x.example"},
            [
                "notifications.ops.url: 'ftp://x.example' is not in the expected form: an "
                "https:// URL, or http:// to this machine only (127.0.0.1, ::1, localhost)"
            ],
        ),
        # When no alternative fits, they are offered together.
        (
            {"type": "email", "to": "ops@example.com"},
            ["notifications.ops.type: must be one of telegram, webhook, apprise, not 'email'"],
        ),
        ("telegram", ["notifications.ops: must be an object, not the string 'telegram'"]),
        # Without a type, the alternative its keys fit best.
        ({"url": "https://x.example"}, ["notifications.ops: missing required key 'type'"]),
    ],
)
def test_a_channel_is_explained_by_the_type_it_means(channel, expected):
    assert messages(changed(POLICY, ("notifications", "ops"), channel), "policy") == expected


def test_a_wrapper_of_another_name_is_an_unknown_key():
    wrong = {"aws_instance": SERVER["digitalocean_droplet"]}
    assert messages(wrong, "legacy-server") == [
        "unknown key 'aws_instance'; expected digitalocean_droplet or hetzner_cloud_server"
    ]


def test_the_legacy_file_must_have_exactly_one_wrapper():
    both = {
        "digitalocean_droplet": SERVER["digitalocean_droplet"],
        "hetzner_cloud_server": SERVER["digitalocean_droplet"],
    }
    expected = (
        "the file must have exactly one top-level key: digitalocean_droplet or hetzner_cloud_server"
    )
    assert messages({}, "legacy-server") == [expected]
    assert messages(both, "legacy-server") == [
        expected,
        "hetzner_cloud_server.provider: must be 'hetzner' inside hetzner_cloud_server, not "
        "'digitalocean'",
    ]


def test_a_file_that_is_empty_or_not_an_object_says_so():
    assert messages(None, "policy") == ["the file is empty"]
    assert messages([1, 2], "legacy-server") == ["the file must hold an object, not a list"]


def test_every_error_is_reported_at_once_sorted_by_line_with_paths_and_lines(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(
        "version: 1\n"
        "accounts:\n"
        "  hz:\n"
        "    provider: aws\n"
        "targets:\n"
        "  - name: web\n"
        "    account: hz\n"
        "    ids: [0]\n"
        "    retention:\n"
        "      keep_daily: seven\n"
        "      keep_dialy: 7\n"
        "    retention: {keep_last: -1}\n"
        "setings: {}\n"
    )
    source = read_yaml(path)
    assert [str(p) for p in validate(source.data, "policy.schema.json", source)] == [
        f"{path}:4: accounts.hz.provider: must be one of digitalocean, hetzner, not 'aws'",
        f"{path}:8: targets[0].ids[0]: must be 1 or more, not 0",
        f"{path}:12: targets[0].retention: duplicate key (lines 9 and 12); keep one of them",
        f"{path}:12: targets[0].retention.keep_last: must be 0 or more, not -1",
        f"{path}:13: unknown key 'setings'; did you mean 'settings'?",
    ]


def test_huge_numbers_and_long_or_foreign_text_are_shown_short():
    assert messages(changed(POLICY, ("version",), 10**5000), "policy") == [
        "version: must be 1, not a number too long to show"
    ]
    assert messages(changed(POLICY, ("version",), 10**100), "policy") == [
        "version: must be 1, not " + "1" + "0" * 56 + "..."
    ]
    long_text = "x" * 500
    assert messages(changed(POLICY, ("version",), long_text), "policy") == [
        f"version: must be 1, not '{'x' * 57}...'"
    ]
    assert messages(changed(POLICY, ("targets", 0, "ключ"), "значение"), "policy")[0].startswith(
        "targets[0]: unknown key 'ключ'; expected name, account"
    )
    assert messages(changed(POLICY, ("accounts", "hetzner-prod", "provider"), "☁"), "policy") == [
        "accounts.hetzner-prod.provider: must be one of digitalocean, hetzner, not '☁'"
    ]


def test_deep_nesting_does_not_crash_validation():
    deep: dict = {}
    node = deep
    for _ in range(100_000):
        node["x"] = {}
        node = node["x"]
    free_form = changed(POLICY, ("notifications", "n8n", "payload_success"), deep)
    assert messages(free_form, "policy") == []
    nested_list: list = []
    for _ in range(100_000):
        nested_list = [nested_list]
    compared = changed(POLICY, ("targets", 0, "notify"), [nested_list, nested_list])
    assert messages(compared, "policy") == ["the file is nested too deeply to check"]


def test_problems_found_while_reading_come_with_the_schema_problems():
    duplicate = Problem("f", 3, "version", "duplicate key (lines 1 and 3); keep one of them")
    data = changed(POLICY, ("orphans", "keep_last"), 0)
    source = Source("f", data, {("orphans", "keep_last"): 5}, (duplicate,))
    assert validate(data, "policy", source) == [
        duplicate,
        Problem("f", 5, "orphans.keep_last", "must be 1 or more, not 0"),
    ]


def test_coerce_ini_converts_each_value_to_its_declared_type():
    raw = {
        "TIMING": {"delay_between_servers": "2.5", "snapshot_creation_timeout": " 600 "},
        "LOGGING": {"level": "info", "max_bytes": "1_000", "backup_count": "five"},
        "TELEGRAM": {"enabled": "Yes", "timeout": "10", "chat_id": "-100123", "retries": "2.0"},
        "WEBHOOK": {
            "enabled": "off",
            "timeout": "inf",
            "base_delay_between_retries": "nan",
            "url": "https://x",
        },
        "EXTRA": {"anything": "1"},
    }
    assert coerce_ini(raw, load_schema("legacy-config")) == {
        "TIMING": {"delay_between_servers": 2.5, "snapshot_creation_timeout": 600},
        "LOGGING": {"level": "INFO", "max_bytes": 1000, "backup_count": "five"},
        "TELEGRAM": {"enabled": True, "timeout": 10, "chat_id": "-100123", "retries": "2.0"},
        "WEBHOOK": {
            "enabled": False,
            "timeout": "inf",
            "base_delay_between_retries": "nan",
            "url": "https://x",
        },
        "EXTRA": {"anything": "1"},
    }


@pytest.mark.parametrize(
    "text, expected",
    [(w, True) for w in ("true", "TRUE", "yes", "on", "1")]
    + [(w, False) for w in ("false", "No", "OFF", "0")],
)
def test_coerce_ini_reads_booleans_as_configparser_does(text, expected):
    assert coerce_ini({"WEBHOOK": {"enabled": text}}, load_schema("legacy-config")) == {
        "WEBHOOK": {"enabled": expected}
    }


def test_coerce_ini_leaves_what_does_not_convert_for_validation_to_name():
    data = coerce_ini(
        {"TELEGRAM": {"enabled": "maybe", "retries": "9" * 5000}, "LOGGING": {"level": "loud"}},
        load_schema("legacy-config"),
    )
    assert data == {
        "TELEGRAM": {"enabled": "maybe", "retries": "9" * 5000},
        "LOGGING": {"level": "loud"},
    }
    assert messages(data, "legacy-config") == [
        "LOGGING.level: must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL, not 'loud'",
        "TELEGRAM.enabled: must be true or false, not the string 'maybe'",
        f"TELEGRAM.retries: must be an integer, not the string '{'9' * 57}...'",
    ]


def test_schema_dir_in_a_checkout_is_the_top_level_folder():
    assert schema_dir() == Path(__file__).resolve().parents[3] / "schemas"
    assert sorted(p.name for p in schema_dir().glob("*.schema.json")) == [
        f"{n}.schema.json" for n in sorted(SCHEMAS)
    ]


def test_load_schema_takes_the_short_or_the_file_name_and_reads_once():
    assert load_schema("policy") == load_schema("policy.schema.json")
    assert load_schema("policy") is load_schema("policy")


@pytest.mark.parametrize(
    "problem, text",
    [
        (
            Problem("p.yaml", 7, "targets[0].name", "must not be empty"),
            "p.yaml:7: targets[0].name: must not be empty",
        ),
        (
            Problem("p.yaml", None, "version", "must be 1, not 2"),
            "p.yaml: version: must be 1, not 2",
        ),
        (
            Problem("p.yaml", 3, "", "not valid YAML: mapping values are not allowed here"),
            "p.yaml:3: not valid YAML: mapping values are not allowed here",
        ),
        (
            Problem("s.json", 2, "id", "duplicate key (lines 1 and 2)", warning=True),
            "warning: s.json:2: id: duplicate key (lines 1 and 2)",
        ),
    ],
)
def test_problem_reads_file_line_path_message(problem, text):
    assert str(problem) == text


def _numbers(node, where=""):
    """Yield (place, schema) for every schema node that admits a number."""
    if isinstance(node, dict):
        kinds = node.get("type", [])
        if {"number", "integer"} & set([kinds] if isinstance(kinds, str) else kinds):
            yield where, node
        for key, value in node.items():
            yield from _numbers(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _numbers(value, f"{where}/{index}")


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_number_has_a_lower_and_an_upper_bound(name):
    """Issue 12: `snapshot_creation_timeout: 10**30` passed validation and ended in an
    OverflowError."""
    for where, schema in _numbers(load_schema(name)):
        assert {"minimum", "exclusiveMinimum"} & set(schema), f"{where} has no lower bound"
        assert {"maximum", "exclusiveMaximum"} & set(schema), f"{where} has no upper bound"
        assert schema.get("maximum", 0) < 2**63, f"{where} allows numbers past 64 bits"


@pytest.mark.parametrize(
    "schema, path, value, expected",
    [
        (
            "policy",
            ("settings", "snapshot_creation_timeout"),
            10**30,
            "settings.snapshot_creation_timeout: must be 604800 or less, not 1" + "0" * 30,
        ),
        (
            "policy",
            ("settings", "request_timeout"),
            1e308,
            "settings.request_timeout: must be 3600 or less, not 1e+308",
        ),
        (
            "policy",
            ("settings", "delay_between_servers"),
            3600.5,
            "settings.delay_between_servers: must be 3600 or less, not 3600.5",
        ),
        (
            "policy",
            ("settings", "parallel"),
            10001,
            "settings.parallel: must be 10000 or less, not 10001",
        ),
        (
            "policy",
            ("settings", "log", "max_bytes"),
            2**30 + 1,
            "settings.log.max_bytes: must be 1073741824 or less, not 1073741825",
        ),
        (
            "policy",
            ("settings", "log", "backup_count"),
            1001,
            "settings.log.backup_count: must be 1000 or less, not 1001",
        ),
        (
            "policy",
            ("orphans", "keep_last"),
            100_001,
            "orphans.keep_last: must be 100000 or less, not 100001",
        ),
        (
            "policy",
            ("settings", "prices", "hetzner", "per_gb_month"),
            1000.5,
            "settings.prices.hetzner.per_gb_month: must be 1000 or less, not 1000.5",
        ),
        (
            "policy",
            ("targets", 2, "retention", "keep_hourly"),
            10**6,
            "targets[2].retention.keep_hourly: must be 100000 or less, not 1000000",
        ),
        (
            "policy",
            ("targets", 2, "safety", "max_deletions"),
            10**6,
            "targets[2].safety.max_deletions: must be 100000 or less, not 1000000",
        ),
        (
            "policy",
            ("notifications", "n8n", "retries"),
            11,
            "notifications.n8n.retries: must be 10 or less, not 11",
        ),
        (
            "policy",
            ("notifications", "n8n", "timeout"),
            601,
            "notifications.n8n.timeout: must be 600 or less, not 601",
        ),
        (
            "policy",
            ("notifications", "ops", "base_delay_between_retries"),
            61,
            "notifications.ops.base_delay_between_retries: must be 60 or less, not 61",
        ),
        (
            "policy",
            ("notifications", "ops", "chat_id"),
            2**53,
            "notifications.ops.chat_id: must be 9007199254740991 or less, not 9007199254740992",
        ),
        (
            "policy",
            ("targets", 0, "ids", 0),
            2**63,
            "targets[0].ids[0]: must be 9223372036854775807 or less, not 9223372036854775808",
        ),
        (
            "policy",
            ("targets", 0, "ids", 1),
            "1" * 20,
            f"targets[0].ids[1]: '{'1' * 20}' is not in the expected form: a server id: a "
            "positive number or a string of up to 19 digits",
        ),
        (
            "legacy-server",
            ("digitalocean_droplet", "retain_last_snapshots"),
            10**30,
            "digitalocean_droplet.retain_last_snapshots: must be 100000 or less, not 1" + "0" * 30,
        ),
        (
            "legacy-server",
            ("digitalocean_droplet", "id"),
            2**63,
            "digitalocean_droplet.id: must be 9223372036854775807 or less, not 9223372036854775808",
        ),
        (
            "legacy-config",
            ("TIMING", "snapshot_creation_timeout"),
            604801,
            "TIMING.snapshot_creation_timeout: must be 604800 or less, not 604801",
        ),
        (
            "legacy-config",
            ("TELEGRAM", "timeout"),
            1e308,
            "TELEGRAM.timeout: must be 600 or less, not 1e+308",
        ),
        (
            "legacy-config",
            ("WEBHOOK", "retries"),
            10**30,
            "WEBHOOK.retries: must be 10 or less, not 1" + "0" * 30,
        ),
    ],
)
def test_a_number_past_its_bound_is_refused(schema, path, value, expected):
    assert messages(changed(EXAMPLES[schema], path, value), schema) == [expected]


@pytest.mark.parametrize(
    "schema, path, value",
    [
        ("policy", ("settings", "snapshot_creation_timeout"), 604800),
        ("policy", ("settings", "request_timeout"), 3600),
        ("policy", ("settings", "parallel"), 10000),
        ("policy", ("targets", 2, "retention", "keep_hourly"), 100_000),
        ("policy", ("notifications", "ops", "chat_id"), -1001234567890),
        ("policy", ("targets", 0, "ids", 0), 2**63 - 1),
        ("legacy-server", ("digitalocean_droplet", "id"), "9" * 19),
        ("legacy-config", ("LOGGING", "max_bytes"), 2**30),
        ("legacy-config", ("TELEGRAM", "retries"), 10),
    ],
)
def test_a_number_at_its_bound_is_fine(schema, path, value):
    assert messages(changed(EXAMPLES[schema], path, value), schema) == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_no_numbers(value):
    """YAML's .nan passes every minimum and maximum; it and .inf must fail as what they are."""
    shown = repr(value)
    assert messages(changed(POLICY, ("settings", "request_timeout"), value), "policy") == [
        f"settings.request_timeout: must be a number, not {shown}"
    ]
    assert messages(
        changed(SERVER, ("digitalocean_droplet", "retain_last_snapshots"), value), "legacy-server"
    ) == [f"digitalocean_droplet.retain_last_snapshots: must be an integer, not {shown}"]


def test_an_ini_number_past_its_bound_is_refused_after_conversion():
    raw = {
        "TIMING": {"snapshot_creation_timeout": "1" + "0" * 30, "delay_between_servers": "1e308"},
        "TELEGRAM": {"retries": "11"},
    }
    assert sorted(messages(coerce_ini(raw, load_schema("legacy-config")), "legacy-config")) == [
        "TELEGRAM.retries: must be 10 or less, not 11",
        "TIMING.delay_between_servers: must be 3600 or less, not 1e+308",
        "TIMING.snapshot_creation_timeout: must be 604800 or less, not 1" + "0" * 30,
    ]
