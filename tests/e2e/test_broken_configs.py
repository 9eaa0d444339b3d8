"""Every file in tests/config_corpus is broken in its own way: each gets its own message, exit 1, no traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snapshot_policy.cli import main

CORPUS = Path(__file__).resolve().parents[1] / "config_corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


def test_the_corpus_is_large_enough():
    assert len(EXPECTED) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_config_gives_its_message_and_exit_1(name, capsys, monkeypatch):
    monkeypatch.chdir(CORPUS)
    for variable in ("HCLOUD_TOKEN", "DIGITALOCEAN_TOKEN", "SNAPSHOT_POLICY_TEST_UNSET"):
        monkeypatch.delenv(variable, raising=False)
    code = main(["validate", str(CORPUS / name)])
    err = capsys.readouterr().err
    assert code == 1
    assert EXPECTED[name] in err, err
    assert "Traceback" not in err
