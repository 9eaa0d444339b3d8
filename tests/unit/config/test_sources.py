"""Reading YAML, JSON and INI files: data, line numbers, and every way a file can be unreadable."""

from __future__ import annotations

import os

import pytest

from snapshot_policy.config import sources
from snapshot_policy.config.problems import ConfigError, Problem
from snapshot_policy.config.sources import Source, read_ini, read_json, read_yaml


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def only_problem(excinfo) -> str:
    (problem,) = excinfo.value.problems
    return str(problem)


POLICY = """\
version: 1
accounts:
  hz:
    provider: hetzner
targets:
  - name: web
    account: hz
    ids: [1, "2"]
    retention:
      keep_daily: 7
"""


def test_read_yaml_gives_the_data_and_the_line_of_every_key(tmp_path):
    source = read_yaml(write(tmp_path, "p.yaml", POLICY))
    assert source.file == str(tmp_path / "p.yaml")
    assert source.data["targets"][0]["ids"] == [1, "2"]
    assert source.line_of(("version",)) == 1
    assert source.line_of(("accounts", "hz", "provider")) == 4
    assert source.line_of(("targets", 0)) == 6
    assert source.line_of(("targets", 0, "ids", 1)) == 8
    assert source.line_of(("targets", 0, "retention", "keep_daily")) == 10
    assert source.problems == ()


def test_line_of_falls_back_to_the_nearest_known_parent(tmp_path):
    source = read_yaml(write(tmp_path, "p.yaml", POLICY))
    assert source.line_of(("targets", 0, "retention", "keep_weekly")) == 9
    assert source.line_of(("nowhere", "at", "all")) is None
    assert source.line_of(()) is None


def test_read_yaml_reports_a_duplicate_key_and_keeps_the_line_of_the_last(tmp_path):
    text = (
        "version: 1\ntargets:\n  - name: a\n    retention: {keep_daily: 1}\n"
        "    retention: {keep_daily: 2}\n"
    )
    source = read_yaml(write(tmp_path, "p.yaml", text))
    assert source.data["targets"][0]["retention"] == {"keep_daily": 2}
    assert [str(p) for p in source.problems] == [
        f"{tmp_path / 'p.yaml'}:5: targets[0].retention: duplicate key (lines 4 and 5); keep "
        "one of them"
    ]
    assert source.line_of(("targets", 0, "retention", "keep_daily")) == 5


def test_read_yaml_keys_merged_with_an_alias_keep_their_own_line_and_lose_to_explicit_ones(
    tmp_path,
):
    text = (
        "base: &base\n  keep_daily: 7\n  keep_weekly: 4\nretention:\n  <<: *base\n  keep_daily: 3\n"
    )
    source = read_yaml(write(tmp_path, "p.yaml", text))
    assert source.data["retention"] == {"keep_daily": 3, "keep_weekly": 4}
    assert source.line_of(("retention", "keep_daily")) == 6
    assert source.line_of(("retention", "keep_weekly")) == 3
    assert source.problems == ()


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "a: 1\n  b: 2\n",
            ":2: not valid YAML: mapping values are not allowed here; put quotes around a "
            "value that contains ': '",
        ),
        (
            "a:\n\tb: 1\n",
            ":2: not valid YAML: while scanning for the next token, found character '\\t' "
            "that cannot start any token; indent with spaces, not tabs",
        ),
        (
            "a: [1, 2\nb: 3\n",
            ":2: not valid YAML: while parsing a flow sequence on line 1, expected ',' or "
            "']', but got ':'",
        ),
        (
            "a: 1\n---\nb: 2\n",
            ":2: not valid YAML: expected a single document in the stream on line 1, but "
            "found another document",
        ),
    ],
)
def test_read_yaml_syntax_errors_name_the_line(tmp_path, text, expected):
    path = write(tmp_path, "p.yaml", text)
    with pytest.raises(ConfigError) as excinfo:
        read_yaml(path)
    assert only_problem(excinfo) == f"{path}{expected}"


def test_read_yaml_loads_safely_and_refuses_python_tags(tmp_path):
    path = write(tmp_path, "p.yaml", "a: !!python/object/apply:os.system ['echo owned']\n")
    with pytest.raises(ConfigError) as excinfo:
        read_yaml(path)
    assert "could not determine a constructor for the tag" in only_problem(excinfo)


def test_read_yaml_of_an_empty_file_gives_no_data(tmp_path):
    assert read_yaml(write(tmp_path, "p.yaml", "# nothing yet\n")).data is None


def test_read_yaml_refuses_an_alias_bomb(tmp_path):
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    levels += [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 10)}]" for i in range(8)
    ]
    path = write(tmp_path, "p.yaml", "\n".join(levels) + "\n")
    with pytest.raises(ConfigError) as excinfo:
        read_yaml(path)
    assert (
        only_problem(excinfo)
        == f"{path}: the file holds more than 250,000 values once its aliases (*name) are expanded"
    )


def test_read_yaml_refuses_an_alias_inside_itself(tmp_path):
    path = write(tmp_path, "p.yaml", "loop: &x [*x]\n")
    with pytest.raises(ConfigError) as excinfo:
        read_yaml(path)
    assert only_problem(excinfo) == (
        f"{path}:1: loop[0][0]: nested more than 50 levels deep, or an alias (*name) sits "
        "inside itself"
    )


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a: " + "[" * 5000 + "]" * 5000 + "\n", "the file is nested too deeply to read"),
        (
            "a: " + "9" * 5000 + "\n",
            "a value in the file cannot be read: Exceeds the limit (4300 digits) for integer "
            "string conversion: value has 5000 digits",
        ),
        ("day: 2026-02-30\n", "a value in the file cannot be read: day is out of range for month"),
    ],
)
def test_read_yaml_values_python_cannot_hold_are_problems_not_tracebacks(tmp_path, text, expected):
    path = write(tmp_path, "p.yaml", text)
    with pytest.raises(ConfigError) as excinfo:
        read_yaml(path)
    assert only_problem(excinfo) == f"{path}: {expected}"


SERVER_JSON = """\
{
\t"hetzner_cloud_server": {
\t\t"provider": "hetzner",
\t\t"id": 4711,
\t\t"telegram": {
\t\t\t"chat_id": "-100"
\t\t}
\t}
}
"""


def test_read_json_gives_lines_even_with_tab_indentation(tmp_path):
    source = read_json(write(tmp_path, "s.json", SERVER_JSON))
    assert source.data["hetzner_cloud_server"]["id"] == 4711
    assert source.line_of(("hetzner_cloud_server",)) == 2
    assert source.line_of(("hetzner_cloud_server", "id")) == 4
    assert source.line_of(("hetzner_cloud_server", "telegram", "chat_id")) == 6


def test_read_json_warns_of_a_duplicate_key_and_uses_the_last(tmp_path):
    source = read_json(write(tmp_path, "s.json", '{\n  "id": 1,\n  "id": 2\n}\n'))
    assert source.data == {"id": 2}
    assert [str(p) for p in source.problems] == [
        f"warning: {tmp_path / 's.json'}:3: id: duplicate key (lines 2 and 3); the last one is used"
    ]


def test_read_json_without_lines_when_yaml_cannot_follow_it(tmp_path):
    key = "k" * 1100  # YAML limits implicit keys to 1024 characters; JSON does not
    source = read_json(write(tmp_path, "s.json", f'{{"{key}": 1}}'))
    assert source.data == {key: 1}
    assert source.lines == {}


def test_read_json_syntax_error_gives_line_and_column(tmp_path):
    path = write(tmp_path, "s.json", '{\n  "id": 1,\n  "name" "web"\n}\n')
    with pytest.raises(ConfigError) as excinfo:
        read_json(path)
    assert only_problem(excinfo) == f"{path}:3: not valid JSON: expecting ':' delimiter (column 10)"


def test_read_json_too_deep_or_too_long_numbers_are_problems(tmp_path):
    for text in ("[" * 100_000 + "]" * 100_000, '{"id": ' + "1" * 5000 + "}"):
        with pytest.raises(ConfigError):
            read_json(write(tmp_path, "s.json", text))


CONFIG = """\
# snapshots.config
[DIRECTORIES]
configs_dir = configs

[TELEGRAM]
Enabled = yes
message_success = 100% done: {server_name}
message_failure = first line
  second line
; a comment
retries: 3
"""


def test_read_ini_gives_raw_strings_keys_as_written_and_lines(tmp_path):
    source = read_ini(write(tmp_path, "snapshots.config", CONFIG))
    assert source.data == {
        "DIRECTORIES": {"configs_dir": "configs"},
        "TELEGRAM": {
            "Enabled": "yes",
            "message_success": "100% done: {server_name}",
            "message_failure": "first line\nsecond line",
            "retries": "3",
        },
    }
    assert source.line_of(("DIRECTORIES",)) == 2
    assert source.line_of(("DIRECTORIES", "configs_dir")) == 3
    assert source.line_of(("TELEGRAM", "Enabled")) == 6
    assert source.line_of(("TELEGRAM", "message_failure")) == 8
    assert source.line_of(("TELEGRAM", "retries")) == 11
    assert source.line_of(("TELEGRAM", "timeout")) == 5


def test_read_ini_leaves_out_the_default_section(tmp_path):
    source = read_ini(write(tmp_path, "snapshots.config", "[DEFAULT]\n[LOGGING]\nlevel = INFO\n"))
    assert source.data == {"LOGGING": {"level": "INFO"}}


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "[TIMING]\ndelay_between_servers = 1\ndelay_between_servers = 2\n",
            ":3: TIMING.delay_between_servers: duplicate key (lines 2 and 3); keep one of them",
        ),
        (
            "[TIMING]\na = 1\n\n[TIMING]\nb = 2\n",
            ":4: TIMING: duplicate section [TIMING] (lines 1 and 4); merge the two into one",
        ),
        (
            "level = INFO\n",
            ":1: a key comes before any [SECTION] header; start with a section such as [TELEGRAM]",
        ),
        (
            "[LOGGING]\nlevel = INFO\njust some words\n",
            ":3: this line is neither a [SECTION] header nor a key = value line",
        ),
    ],
)
def test_read_ini_refuses_what_configparser_cannot_read(tmp_path, text, expected):
    path = write(tmp_path, "snapshots.config", text)
    with pytest.raises(ConfigError) as excinfo:
        read_ini(path)
    assert only_problem(excinfo) == f"{path}{expected}"


@pytest.mark.parametrize("reader", [read_yaml, read_json, read_ini])
def test_a_missing_file_is_a_problem_naming_it(tmp_path, reader):
    path = tmp_path / "nowhere.conf"
    with pytest.raises(ConfigError) as excinfo:
        reader(path)
    assert excinfo.value.problems == [
        Problem(str(path), None, "", "cannot read the file: it does not exist")
    ]


@pytest.mark.parametrize("reader", [read_yaml, read_json, read_ini])
def test_a_directory_is_not_a_config_file(tmp_path, reader):
    with pytest.raises(ConfigError) as excinfo:
        reader(tmp_path)
    assert (
        only_problem(excinfo) == f"{tmp_path}: cannot read the file: it is a directory, not a file"
    )


def test_a_binary_file_is_refused(tmp_path):
    path = tmp_path / "._server.json"
    path.write_bytes(b"\x00\x05\x16\x07 Mac OS X resource fork")
    with pytest.raises(ConfigError) as excinfo:
        read_json(path)
    assert only_problem(excinfo) == f"{path}: cannot read the file: it is a binary file, not text"


def test_a_file_not_in_utf8_is_refused_with_the_line_of_the_bad_byte(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"version: 1\nname: caf\xe9\n")
    with pytest.raises(ConfigError) as excinfo:
        read_yaml(path)
    assert (
        only_problem(excinfo)
        == f"{path}:2: cannot read the file: it is not UTF-8 text (byte 0xe9 on line 2)"
    )


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "snapshots.config"
    path.write_bytes("\ufeff[LOGGING]\nlevel = INFO\n".encode())
    assert read_ini(path).data == {"LOGGING": {"level": "INFO"}}


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_bytes(b"#" * (sources.MAX_BYTES + 1))
    with pytest.raises(ConfigError) as excinfo:
        read_yaml(path)
    assert (
        only_problem(excinfo)
        == f"{path}: cannot read the file: it is larger than 5 MB, far too large for a config file"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_says_permission_denied(tmp_path):
    path = write(tmp_path, "p.yaml", "version: 1\n")
    path.chmod(0)
    with pytest.raises(ConfigError) as excinfo:
        read_yaml(path)
    assert only_problem(excinfo) == f"{path}: cannot read the file: permission denied"


def test_source_line_of_accepts_any_sequence():
    source = Source("f", {}, {("a",): 3})
    assert source.line_of(["a", "b"]) == 3
