"""The README's key tables list exactly the keys the schemas allow."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from schema_keys import schema_keys

from snapshot_policy.config.schemas import load_schema

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()
TABLES = {
    "legacy-config.schema.json": "### Key reference: `snapshots.config`",
    "legacy-server.schema.json": "### Key reference: server files",
    "policy.schema.json": "### Key reference: YAML policy",
}


def rows(heading: str) -> dict[str, str]:
    """The table under `heading`: {key: its default column}."""
    section = README.split(heading, 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    return dict(re.findall(r"^\| `([^`]+)` \| ([^|]*?) ?\|", section, flags=re.MULTILINE))


def documented(heading: str) -> list[str]:
    return list(rows(heading))


def shown(value: object) -> str:
    return "" if value is None else f"`{json.dumps(value) if isinstance(value, bool) else value}`"


@pytest.mark.parametrize("schema", sorted(TABLES))
def test_readme_table_matches_the_schema(schema):
    keys = [k for k in schema_keys(load_schema(schema)) if not k.startswith("defaults.")]
    assert documented(TABLES[schema]) == keys


@pytest.mark.parametrize("schema", sorted(TABLES))
def test_readme_tables_show_the_schemas_defaults(schema):
    """The schema is the one place a default is written; the README shows it, and no other."""
    keys = schema_keys(load_schema(schema))
    assert {key: column for key, column in rows(TABLES[schema]).items()} == {
        key: shown(keys[key].get("default")) for key in rows(TABLES[schema])
    }


def test_defaults_take_the_keys_of_a_target():
    keys = schema_keys(load_schema("policy.schema.json"))
    for key in (k for k in keys if k.startswith("defaults.")):
        assert key.replace("defaults.", "targets[].", 1) in keys
