"""Bad-input fuzzing (issue 7, part 3): malformed legacy JSON, legacy INI and YAML policies.

Each example starts from a valid file and gets at least one defect that makes it invalid
for certain — a wrong type, a huge or negative number where the schema forbids it, a
missing or misspelt key, deep nesting, binary garbage, invalid UTF-8, a truncated file —
plus noise that may or may not be valid on its own (unicode, huge numbers where they are
allowed). `validate FILE` must then exit 1 with a message on stderr: never a traceback,
never a hang (a hypothesis deadline plus a hard alarm per example).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import strategies as st

from snapshot_policy.cli import main

HANG_SECONDS = 10
# No `explain` phase: it re-runs failures under a tracer that makes deep inputs look hung.
FUZZ = settings(
    max_examples=60,
    deadline=4000,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- the harness -----------------------------------------------------------------------------


@contextlib.contextmanager
def alarm(seconds: int):
    """Raise TimeoutError in the test if the body runs longer than `seconds`."""

    def expire(signum, frame):
        raise TimeoutError(f"validate hung for {seconds}s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def validate(files: dict[str, bytes], argument: str) -> tuple[int, str, str]:
    """Write `files` into a fresh folder, run `validate FOLDER/argument` there; return
    (exit code, stdout, stderr). Any exception out of main() fails the test as it is."""
    with tempfile.TemporaryDirectory() as folder:
        for name, content in files.items():
            path = Path(folder, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        out, err = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        os.chdir(folder)
        try:
            with (
                alarm(HANG_SECONDS),
                contextlib.redirect_stdout(out),
                contextlib.redirect_stderr(err),
            ):
                code = main(["validate", str(Path(folder, argument))])
        finally:
            os.chdir(cwd)
        return code, out.getvalue(), err.getvalue()


def assert_refused(code: int, out: str, err: str) -> None:
    assert "Traceback" not in err + out, err
    assert code == 1, f"exit {code}; stdout {out!r}; stderr {err!r}"
    assert err.strip(), "exit 1 without a message on stderr"


@pytest.fixture(autouse=True)
def no_ambient_tokens(monkeypatch):
    for variable in ("HCLOUD_TOKEN", "DIGITALOCEAN_TOKEN"):
        monkeypatch.delenv(variable, raising=False)


# -- shared building blocks ------------------------------------------------------------------

UNICODE = st.text(st.characters(blacklist_categories=["Cs", "Cc", "Cn"]), min_size=1, max_size=12)
HUGE = st.sampled_from([10**20, 2**63, 2**64 + 1, 10**100, 10**400])
WRONG_TYPES = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.just([]),
    st.just({}),
    st.lists(st.integers(), min_size=1, max_size=3),
    st.dictionaries(UNICODE, st.integers(), min_size=1, max_size=2),
    UNICODE,
)
GARBAGE = st.binary(min_size=1, max_size=300)


def deep(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def deep_text(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def truncated(data: st.DataObject, text: bytes) -> bytes:
    return text[: data.draw(st.integers(min_value=0, max_value=len(text) - 1), label="cut at")]


# -- legacy JSON server files ----------------------------------------------------------------

JSON_REQUIRED = ("provider", "id", "name", "api_token", "retain_last_snapshots")
JSON_WRONG = {
    "id": st.one_of(
        st.just(0),
        st.just(-1),
        HUGE.map(lambda n: -n),
        st.just("12ab"),
        st.just(""),
        st.just(1.5),
        st.booleans(),
        st.just([1]),
        UNICODE.filter(lambda s: not s.isdigit()),
    ),
    "name": st.one_of(st.just(""), st.integers(), st.booleans(), st.just(["web"]), st.none()),
    "api_token": st.one_of(st.just(""), st.integers(), st.none(), st.just({"t": 1})),
    "retain_last_snapshots": st.one_of(
        st.just(-1),
        HUGE.map(lambda n: -n),
        st.just(1.5),
        st.just("3"),
        st.booleans(),
        st.none(),
        st.just([3]),
    ),
    "provider": st.one_of(st.just("hetzner"), st.just("aws"), st.integers(), st.none()),
    "telegram": st.one_of(
        st.just("yes"),
        st.just([]),
        st.just({"enabled": "maybe"}),
        st.just({"chat_id": [1]}),
        st.just({"bot_tokn": "x"}),
    ),
    "webhook": st.one_of(
        st.just(1),
        st.just({"enabled": "on"}),
        st.just({"payload_success": "not an object"}),
        st.just({"timeout": "soon"}),
    ),
}


def valid_server() -> dict:
    return {
        "provider": "digitalocean",
        "id": "3164444",
        "name": "web-1",
        "api_token": "dop_v1_fuzz",
        "retain_last_snapshots": 3,
    }


@st.composite
def broken_server_files(draw) -> bytes:
    server = valid_server()
    if draw(st.booleans(), label="unicode/huge noise"):
        server["name"] = draw(UNICODE.filter(lambda s: s.strip()))
        server["id"] = draw(st.one_of(st.just("3164444"), HUGE))
    defect = draw(
        st.sampled_from(
            [
                "missing key",
                "wrong type",
                "unknown key",
                "wrapper",
                "top level",
                "deep",
                "garbage",
                "truncated",
                "bad utf-8",
                "not json",
            ]
        )
    )
    note(f"defect: {defect}")
    wrapper = "digitalocean_droplet"
    if defect == "missing key":
        del server[draw(st.sampled_from(JSON_REQUIRED))]
    elif defect == "wrong type":
        for key in draw(
            st.lists(st.sampled_from(sorted(JSON_WRONG)), min_size=1, max_size=3, unique=True)
        ):
            server[key] = draw(JSON_WRONG[key])
    elif defect == "unknown key":
        server[draw(st.sampled_from(["retain_last_snapshot", "api-token", "ID", "naem"]))] = draw(
            WRONG_TYPES
        )
    elif defect == "wrapper":
        choice = draw(st.sampled_from(["misspelt", "two", "none"]))
        if choice == "two":
            return json.dumps(
                {
                    "digitalocean_droplet": server,
                    "hetzner_cloud_server": dict(server, provider="hetzner"),
                }
            ).encode()
        wrapper = {"misspelt": "digitalocean_droplets", "none": None}[choice]
        if wrapper is None:
            return json.dumps(server).encode()
    elif defect == "top level":
        return json.dumps(
            draw(st.one_of(st.just([server]), UNICODE, st.integers(), st.none(), HUGE))
        ).encode()
    elif defect == "deep":
        depth = draw(st.sampled_from([50, 1000, 100_000]))
        return (
            '{"digitalocean_droplet": {"provider": "digitalocean", "id": "1", "name": "w", '
            '"api_token": "t", "retain_last_snapshots": ' + deep_text(depth) + "}}"
        ).encode()
    elif defect == "garbage":
        return draw(GARBAGE)
    elif defect == "bad utf-8":
        text = json.dumps({wrapper: server}).encode()
        return text[:5] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"])) + text[5:]
    elif defect == "not json":
        return draw(
            st.sampled_from(
                [
                    b"{'digitalocean_droplet': {}}",
                    b"digitalocean_droplet = 1",
                    b"{,}",
                    b'{"a": 1,}',
                    b"NaN",
                    b"\x00\x00\x00",
                ]
            )
        )
    text = json.dumps({wrapper: server}, ensure_ascii=draw(st.booleans())).encode()
    if defect == "truncated":
        return truncated(draw(st.data()), text)
    return text


@FUZZ
@given(content=broken_server_files())
def test_broken_legacy_server_file_exits_1_with_a_message(content):
    assert_refused(*validate({"configs/droplet.json": content}, "configs/droplet.json"))


# -- legacy INI (snapshots.config) -----------------------------------------------------------

INI_VALID = """\
[DIRECTORIES]
configs_dir = configs
logs_dir = logs

[TIMING]
delay_between_servers = 20
snapshot_creation_timeout = 3600

[LOGGING]
max_bytes = 5242880
backup_count = 5
level = INFO

[TELEGRAM]
enabled = false
timeout = 10
retries = 3
message_success = *ok* {server_name}

[WEBHOOK]
enabled = false
payload_success = {"server": "{server_name}"}
"""
INI_BAD_VALUES = {
    # Not "٣": int() reads it as 3, as snapshots.py's getint did.
    ("TIMING", "snapshot_creation_timeout"): ["abc", "-5", "0", "1.5", "1e999", "0x10", ""],
    ("TIMING", "delay_between_servers"): ["-1", "soon", "nan?", "-1e400"],
    ("LOGGING", "max_bytes"): ["-1", "5MB", "1.5"],
    ("LOGGING", "backup_count"): ["-3", "many"],
    ("LOGGING", "level"): ["LOUD", "debugg", "0", "ÎNFO"],
    ("TELEGRAM", "enabled"): ["maybe", "2", "ja"],
    ("TELEGRAM", "retries"): ["-1", "three", "1.5"],
    ("TELEGRAM", "message_success"): ["{nope}", "{server_name", "{0}"],
    ("WEBHOOK", "payload_success"): ["{not json", "[1, 2]", '"text"', '{"a": "{unknown_var}"}'],
    ("WEBHOOK", "retries"): ["-2", "x"],
}
VALID_SERVER_JSON = json.dumps(
    {
        "hetzner_cloud_server": {
            "provider": "hetzner",
            "id": 4711,
            "name": "db-1",
            "api_token": "fuzz-token",
            "retain_last_snapshots": 2,
        }
    }
).encode()


@st.composite
def broken_ini_files(draw) -> bytes:
    text = INI_VALID
    if draw(st.booleans(), label="unicode/huge noise"):
        text = text.replace(
            "*ok*",
            draw(UNICODE)
            .replace("{", "(")
            .replace("}", ")")
            .replace("%", "pct")
            .replace("\n", " ")
            .replace("\r", " ")
            or "ok",
        )
        text = text.replace("max_bytes = 5242880", f"max_bytes = {draw(HUGE)}")
    defect = draw(
        st.sampled_from(
            [
                "bad value",
                "unknown key",  # an unknown section only warns, as snapshots.py ignored it
                "duplicate",
                "no section",
                "garbage",
                "truncated header",
                "bad utf-8",
                "continuation",
            ]
        )
    )
    note(f"defect: {defect}")
    if defect == "bad value":
        for section, key in draw(
            st.lists(st.sampled_from(sorted(INI_BAD_VALUES)), min_size=1, max_size=3, unique=True)
        ):
            value = draw(st.sampled_from(INI_BAD_VALUES[(section, key)]))
            lines = text.split("\n")
            start = lines.index(f"[{section}]")
            for n in range(start + 1, len(lines)):
                if lines[n].startswith(f"{key} =") or not lines[n].strip():
                    lines[n : n + (1 if lines[n].strip() else 0)] = [f"{key} = {value}"]
                    break
            text = "\n".join(lines)
    elif defect == "unknown key":
        unknown = draw(st.sampled_from(["delay_between_server", "timeout", "snapshot_timeout"]))
        text = text.replace("[TIMING]\n", f"[TIMING]\n{unknown} = 5\n")
    elif defect == "duplicate":
        text = draw(
            st.sampled_from(
                [
                    text.replace("level = INFO", "level = INFO\nlevel = DEBUG"),
                    text + "\n[TIMING]\ndelay_between_servers = 1\n",
                ]
            )
        )
    elif defect == "no section":
        text = (
            draw(st.sampled_from(["configs_dir = configs\n", "just some words\n", "= 5\n"])) + text
        )
    elif defect == "garbage":
        return draw(GARBAGE)
    elif defect == "truncated header":
        cut = text.index("[LOGGING]") + draw(
            st.integers(min_value=1, max_value=len("[LOGGING]") - 1)
        )
        return text[:cut].encode()
    elif defect == "bad utf-8":
        return text.encode().replace(b"level = INFO", b"level = INF\xc3\x28", 1)
    elif defect == "continuation":
        text = text.replace("level = INFO", "level = INFO\n  DEBUG")
    return text.encode()


@FUZZ
@given(content=broken_ini_files())
def test_broken_snapshots_config_exits_1_with_a_message(content):
    files = {"snapshots.config": content, "configs/server.json": VALID_SERVER_JSON}
    assert_refused(*validate(files, "snapshots.config"))


@pytest.mark.parametrize(
    "name, content, problem",
    [
        (
            "policy.yaml",
            b"version: 1\x0c\naccounts: {hz: {provider: hetzner, token: t}}\n"
            b"targets: [{name: w, account: hz, ids: [1]}]\n",
            ":1: cannot read the file: it holds an unprintable character (U+000C on line 1)",
        ),
        (
            "policy.yaml",
            b'version: 1\naccounts: {hz: {provider: hetzner, token: "a\x7fb"}}\n'
            b"targets: [{name: w, account: hz, ids: [1]}]\n",
            ":2: cannot read the file: it holds an unprintable character (U+007F on line 2)",
        ),
        (
            "droplet.json",
            b'{"digitalocean_droplet": {"provider": "digitalocean", "id": "1", "name": '
            b'"web\x7f", "api_token": "t", "retain_last_snapshots": 3}}',
            ":1: cannot read the file: it holds an unprintable character (U+007F on line 1)",
        ),
        ("snapshots.config", b"\x0b", ": the file is empty"),
    ],
)
def test_a_control_character_is_refused_with_a_message_naming_the_file(name, content, problem):
    """YAML forbids control characters and JSON files are held to the same rule, so none ends up
    in a snapshot name or token. configparser reads a vertical tab as a blank line: an INI file of
    nothing else sets nothing and is refused as empty, not taken for a valid layout."""
    code, out, err = validate({name: content, "configs/server.json": VALID_SERVER_JSON}, name)
    assert_refused(code, out, err)
    assert f"{os.sep}{name}{problem}\n" in err, err


@pytest.mark.parametrize(
    "content",
    [b"", b"\n\n", b" \t\r\n", b"\x0c\n", b"\xef\xbb\xbf", b"# [TELEGRAM]\n; enabled = true\n"],
)
def test_a_snapshots_config_without_a_section_is_refused_as_empty(content):
    """A file that sets nothing is a mistake (a failed copy, the wrong file), as an empty policy
    is: without snapshots.config the defaults apply anyway."""
    code, out, err = validate(
        {"snapshots.config": content, "configs/server.json": VALID_SERVER_JSON}, "snapshots.config"
    )
    assert_refused(code, out, err)
    assert err.splitlines()[0].endswith(f"{os.sep}snapshots.config: the file is empty"), err


def test_the_ini_and_server_file_the_fuzzer_breaks_are_valid():
    assert (
        validate(
            {"snapshots.config": INI_VALID.encode(), "configs/server.json": VALID_SERVER_JSON},
            "snapshots.config",
        )[0]
        == 0
    )
    assert (
        validate(
            {"configs/droplet.json": json.dumps({"digitalocean_droplet": valid_server()}).encode()},
            "configs/droplet.json",
        )[0]
        == 0
    )
    assert validate({"policy.yaml": yaml.safe_dump(valid_policy()).encode()}, "policy.yaml")[0] == 0


# -- YAML policies ---------------------------------------------------------------------------


def valid_policy() -> dict:
    return {
        "version": 1,
        "accounts": {"hz": {"provider": "hetzner", "token": "fuzz-token"}},
        "defaults": {"schedule": {"every": "24h"}, "retention": {"keep_daily": 7}},
        "targets": [{"name": "web", "account": "hz", "names": ["web-1"]}],
        "settings": {"lock_file": "run/lock"},
    }


POLICY_DEFECTS = {
    # path in the document -> values that are invalid there for certain
    # Not 1.0: the schema's `const: 1` takes it (JSON knows one number), and so does a reader.
    ("version",): [2, "1", None, [1], 10**100],
    ("accounts",): [[], "hz", None, 5],
    ("accounts", "hz"): ["hetzner", None, []],
    ("accounts", "hz", "provider"): ["aws", "Hetzner", 1, None],
    ("accounts", "hz", "token"): ["env:", "env:1BAD", 5, None, ""],
    ("accounts", "hz", "endpoint"): ["ftp://x", "not a url", 1],
    ("targets",): [{}, "web", None, 1],
    ("targets", 0): ["web", None, 7],
    ("targets", 0, "name"): ["", 5, None],
    ("targets", 0, "account"): ["nope", "", 3],
    ("targets", 0, "names"): ["web-1", 5, None],
    ("targets", 0, "ids"): ["1", [True], [[1]], {}],
    ("targets", 0, "retention"): [
        {"keep_last": -1},
        {"keep_daily": 1.5},
        {"keep_weekly": "4"},
        {"keep_last": -(10**30)},
        {"keep_within": "0d"},
        {"keep_forever": 1},
        {},
        "7d",
    ],
    ("targets", 0, "schedule"): [
        {"every": "1 day"},
        {"every": "3m"},
        {"cron": "61 * * * *"},
        {"cron": "* * *"},
        {"every": "1h", "cron": "0 * * * *"},
        {},
        "daily",
    ],
    ("targets", 0, "safety"): [
        {"max_deletions": -1},
        {"max_deletion": 3},
        {"max_deletions": "ten"},
    ],
    ("targets", 0, "timezone"): ["Mars/Base", "UTC+2", 0, ""],
    ("targets", 0, "notify"): [["nowhere"], "tg", [1]],
    ("defaults", "retention"): [{"keep_daily": -7}, {"keep_dayly": 7}, []],
    ("settings", "log"): [{"level": "LOUD"}, {"max_bytes": -1}, "file.log"],
    ("settings", "parallel"): [0, -(2**64), 1.5, "4"],
    ("settings", "snapshot_creation_timeout"): [0, -1, "1h"],
    ("orphans",): [{"keep_last": 0}, {"keep": 1}, []],
    ("notifications",): [
        {"tg": {"type": "telegram"}},
        {"tg": {"type": "pigeon", "url": "x"}},
        {"hook": {"type": "webhook", "url": "nope"}},
        [],
    ],
}


def put(document: dict, path: tuple, value: object) -> None:
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@st.composite
def broken_policies(draw) -> bytes:
    policy = valid_policy()
    if draw(st.booleans(), label="unicode/huge noise"):
        policy["targets"][0]["names"] = [draw(UNICODE.filter(lambda s: s.strip()))]
        policy["targets"][0]["retention"] = {"keep_last": draw(HUGE)}
    defect = draw(
        st.sampled_from(
            [
                "wrong value",
                "missing key",
                "unknown key",
                "deep",
                "garbage",
                "truncated",
                "bad utf-8",
                "syntax",
                "duplicate key",
                "alias bomb",
                "top level",
            ]
        )
    )
    note(f"defect: {defect}")
    if defect == "wrong value":
        for path in draw(
            st.lists(
                st.sampled_from(sorted(POLICY_DEFECTS, key=str)),
                min_size=1,
                max_size=3,
                unique=True,
            )
        ):
            try:
                put(policy, path, draw(st.sampled_from(POLICY_DEFECTS[path])))
            except (KeyError, IndexError, TypeError):
                pass  # an earlier defect replaced the parent: the document is broken already
    elif defect == "missing key":
        path = draw(
            st.sampled_from(
                [
                    ("version",),
                    ("accounts",),
                    ("targets",),
                    ("accounts", "hz", "provider"),
                    ("targets", 0, "name"),
                    ("targets", 0, "account"),
                    ("targets", 0, "names"),
                ]
            )
        )
        node = policy
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    elif defect == "unknown key":
        put(
            policy,
            draw(
                st.sampled_from(
                    [
                        ("retention",),
                        ("targets", 0, "retension"),
                        ("accounts", "hz", "tokn"),
                        ("settings", "paralel"),
                    ]
                )
            ),
            draw(WRONG_TYPES),
        )
    elif defect == "deep":
        depth = draw(st.sampled_from([40, 500, 3000]))
        return (
            yaml.safe_dump(valid_policy()).encode() + b"extra: " + deep_text(depth).encode() + b"\n"
        )
    elif defect == "garbage":
        return draw(GARBAGE)
    elif defect == "bad utf-8":
        text = yaml.safe_dump(policy, allow_unicode=True).encode()
        return (
            text[:5]
            + draw(
                st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])
            )
            + text[5:]
        )
    elif defect == "syntax":
        text = yaml.safe_dump(policy)
        return draw(
            st.sampled_from(
                [
                    text + "targets: [\n",
                    text.replace("\n  hz:", "\n\thz:"),
                    text + "key: 'unclosed\n",
                    "version: 1\naccounts: {hz: {provider: hetzner}\n",
                    text + "\n---\nversion: 1\n",
                ]
            )
        ).encode()
    elif defect == "duplicate key":
        return (yaml.safe_dump(policy) + "version: 1\n").encode()
    elif defect == "alias bomb":
        levels = draw(st.integers(min_value=3, max_value=9))
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, levels)]
        return (yaml.safe_dump(policy) + "\n".join(lines) + "\n").encode()
    elif defect == "top level":
        return yaml.safe_dump(
            draw(st.one_of(st.just([policy]), UNICODE, st.integers(), HUGE))
        ).encode()
    text = yaml.safe_dump(policy, allow_unicode=draw(st.booleans())).encode()
    if defect == "truncated":
        # Keys are dumped sorted, `version: 1` last: any cut loses or breaks something required.
        text = text.rstrip(b"\n")
        return text[: draw(st.integers(min_value=0, max_value=len(text) - 1))]
    return text


@FUZZ
@given(content=broken_policies())
def test_broken_policy_exits_1_with_a_message(content):
    assert_refused(*validate({"policy.yaml": content}, "policy.yaml"))
