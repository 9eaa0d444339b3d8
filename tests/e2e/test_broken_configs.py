"""Every file in tests/config_corpus is broken in its own way: each gets its own message, exit 1,
no traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from snapshot_policy.cli import main

CORPUS = Path(__file__).resolve().parents[1] / "config_corpus"
EXPECTED = json.loads((CORPUS / "expected.json").read_text())


@pytest.fixture(autouse=True)
def in_the_corpus(monkeypatch):
    """Run beside the files with no token or test variable set, so each file stands alone."""
    monkeypatch.chdir(CORPUS)
    for variable in ("HCLOUD_TOKEN", "DIGITALOCEAN_TOKEN", "SNAPSHOT_POLICY_TEST_UNSET"):
        monkeypatch.delenv(variable, raising=False)


def validate(name: str, capsys) -> tuple[int, str, list[str]]:
    """Run `validate FILE`; return its exit code, its stderr, and the stderr lines about FILE."""
    code = main(["validate", str(CORPUS / name)])
    err = capsys.readouterr().err
    return code, err, [line for line in err.splitlines() if line.startswith(f"{CORPUS / name}:")]


def test_the_corpus_checks_every_file_it_holds():
    """A file with no entry in expected.json would never be validated; an entry with no file
    checks nothing."""
    assert {p.name for p in CORPUS.iterdir()} - {"expected.json"} == set(EXPECTED)


def test_each_broken_config_fails_in_its_own_way(capsys):
    """Two files giving the same messages test one mistake twice: the corpus would prove less
    than it lists."""
    files_by_messages: dict[tuple[str, ...], list[str]] = {}
    for name in sorted(EXPECTED):
        where = re.compile(rf"^{re.escape(str(CORPUS / name))}(?::\d+)?: ")
        messages = tuple(where.sub("", line) for line in validate(name, capsys)[2])
        files_by_messages.setdefault(messages, []).append(name)
    assert [names for names in files_by_messages.values() if len(names) > 1] == []


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_broken_config_gives_its_message_and_exit_1(name, capsys):
    """The message must sit on a line that names the file: with many files, that says which to
    open."""
    code, err, lines = validate(name, capsys)
    assert code == 1
    assert any(EXPECTED[name] in line for line in lines), err
    assert "Traceback" not in err
