"""Policy keys that guard against other configurations and runaway runs: `settings.owner`
(which configuration made a snapshot), `settings.max_deletions_per_run`, a hook's `env` list,
and secrets and headers that must be plain ASCII because they travel in HTTP headers and URLs."""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from snapshot_policy import config
from snapshot_policy.config.policy import load_policy, location_owner

TOKEN = "dop_v1_" + "LEAKconfTOKEN" + "7e" * 25
HEAD = "version: 1\naccounts:\n  do: {provider: digitalocean, token: literal-token}\n"
TARGET = "targets:\n  - {name: web, account: do, ids: [1], retention: {keep_last: 2}}\n"


def policy_at(path, settings: str = "", target: str = TARGET, head: str = HEAD):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head + (f"settings:\n{settings}" if settings else "") + target)
    return path


def the_problem(loaded, path: str):
    [problem] = [p for p in loaded.problems if p.path == path]
    return problem


# -- settings.owner ------------------------------------------------------------------------


def test_without_owner_a_policy_is_named_by_a_hash_of_its_resolved_path(tmp_path, monkeypatch):
    path = policy_at(tmp_path / "prod" / "snapshot-policy.yaml")
    expected = hashlib.sha256(os.fsencode(path.resolve())).hexdigest()[:12]
    loaded = load_policy(path, {})
    assert loaded.settings.owner == expected == location_owner(path)
    assert [t.owner for t in loaded.targets] == [expected]
    # The same file reached another way is the same configuration.
    monkeypatch.chdir(tmp_path / "prod")
    (tmp_path / "link").symlink_to(tmp_path / "prod")
    for other in (
        tmp_path / "prod" / "snapshot-policy.yaml",
        tmp_path / "link" / "snapshot-policy.yaml",
    ):
        assert load_policy(other, {}).settings.owner == expected


def test_a_policy_moved_elsewhere_is_another_configuration_unless_it_names_its_owner(tmp_path):
    first = load_policy(policy_at(tmp_path / "a" / "p.yaml"), {}).settings.owner
    moved = load_policy(policy_at(tmp_path / "b" / "p.yaml"), {}).settings.owner
    assert first != moved
    kept = load_policy(policy_at(tmp_path / "b" / "p.yaml", f"  owner: '{first}'\n"), {})
    assert kept.settings.owner == first and [t.owner for t in kept.targets] == [first]


def test_an_owner_of_digits_only_written_without_quotes_is_refused_saying_to_quote_it(tmp_path):
    """One hashed owner in about 280 is all digits, which YAML reads as a number."""
    loaded = load_policy(policy_at(tmp_path / "p.yaml", "  owner: 754202059726\n"), {})
    problem = the_problem(loaded, "settings.owner")
    assert loaded.targets == []
    assert problem.message.endswith(
        "must be a string, not the number 754202059726; put it in quotes to keep it as text"
    )


@pytest.mark.parametrize("owner", ["prod-db", "A", "x_1", "a" * 63, "0123456789ab"])
def test_an_owner_that_fits_a_hetzner_label_and_a_digitalocean_tag_is_taken(owner, tmp_path):
    loaded = load_policy(policy_at(tmp_path / "p.yaml", f"  owner: '{owner}'\n"), {})
    assert loaded.problems == [] and loaded.settings.owner == owner


@pytest.mark.parametrize(
    "owner", ["a" * 64, "prod.db", "prod:db", "-prod", "prod_", "prød", "prod db", "prod\\n", ""]
)
def test_an_owner_that_would_not_fit_the_marks_is_refused_naming_the_file_and_key(owner, tmp_path):
    path = policy_at(tmp_path / "p.yaml", f'  owner: "{owner}"\n')
    loaded = load_policy(path, {})
    problem = the_problem(loaded, "settings.owner")
    assert loaded.targets == []
    assert (problem.file, problem.line) == (str(path), 5)
    assert (
        "letters, digits, dashes or underscores" in problem.message
        or "must not be empty" in problem.message
    )


def test_a_legacy_layout_is_named_by_its_folder_and_says_so_to_migrate(tmp_path):
    (tmp_path / "snapshots.config").write_text("[TIMING]\ndelay_between_servers = 0\n")
    (tmp_path / "configs").mkdir()
    server = {
        "provider": "digitalocean",
        "id": "1",
        "name": "web-1",
        "api_token": TOKEN,
        "retain_last_snapshots": 2,
    }
    (tmp_path / "configs" / "web.json").write_text(json.dumps({"digitalocean_droplet": server}))
    loaded = config.load(legacy_config=tmp_path / "snapshots.config", cwd=tmp_path)
    expected = hashlib.sha256(os.fsencode(tmp_path.resolve())).hexdigest()[:12]
    assert loaded.settings.owner == expected and [t.owner for t in loaded.targets] == [expected]
    # `migrate` prints the document: the policy it makes keeps the legacy layout's owner.
    assert loaded.document["settings"]["owner"] == expected


# -- settings.max_deletions_per_run ---------------------------------------------------------


def test_max_deletions_per_run_is_off_unless_set(tmp_path):
    assert load_policy(policy_at(tmp_path / "p.yaml"), {}).settings.max_deletions_per_run is None
    loaded = load_policy(policy_at(tmp_path / "q.yaml", "  max_deletions_per_run: 40\n"), {})
    assert loaded.settings.max_deletions_per_run == 40


@pytest.mark.parametrize(
    "value, message",
    [
        (0, "must be 1 or more, not 0"),
        (100001, "must be 100000 or less, not 100001"),
        ("ten", "must be an integer"),
    ],
)
def test_max_deletions_per_run_is_bounded(value, message, tmp_path):
    path = policy_at(tmp_path / "p.yaml", f"  max_deletions_per_run: {value}\n")
    problem = the_problem(load_policy(path, {}), "settings.max_deletions_per_run")
    assert message in problem.message and problem.file == str(path)


# -- hooks.env ------------------------------------------------------------------------------

HOOKED = (
    "targets:\n  - name: web\n    account: do\n    ids: [1]\n    retention: {keep_last: 2}\n"
    "    hooks:\n      before: [/bin/true]\n"
)


def test_a_hook_env_list_names_the_variables_hooks_may_see(tmp_path):
    loaded = load_policy(
        policy_at(tmp_path / "p.yaml", target=HOOKED + "      env: [PGPASSFILE, _X1]\n"), {}
    )
    assert loaded.problems == [] and loaded.targets[0].hooks.env == ("PGPASSFILE", "_X1")
    assert load_policy(policy_at(tmp_path / "q.yaml", target=HOOKED), {}).targets[0].hooks.env == ()


def test_a_targets_hooks_take_the_env_list_of_the_defaults(tmp_path):
    defaults = "defaults:\n  hooks: {before: [/bin/true], env: [PGHOST]}\n"
    loaded = load_policy(policy_at(tmp_path / "p.yaml", target=defaults + TARGET), {})
    assert loaded.targets[0].hooks.env == ("PGHOST",)


@pytest.mark.parametrize("name", ["1ST", "PG-HOST", "A B", "", "X=1", "PGHOST\\n"])
def test_a_hook_env_entry_that_is_no_variable_name_is_refused(name, tmp_path):
    path = policy_at(tmp_path / "p.yaml", target=HOOKED + f'      env: ["{name}"]\n')
    problem = the_problem(load_policy(path, {}), "targets[0].hooks.env[0]")
    assert "variable name" in problem.message or "must not be empty" in problem.message


# -- secrets and headers travel in HTTP: ASCII only (item 16) --------------------------------

NON_ASCII = [TOKEN[:20] + "é" + TOKEN[20:], TOKEN[:20] + "\u2013" + TOKEN[20:], "“" + TOKEN + "”"]


@pytest.mark.parametrize("token", NON_ASCII)
def test_a_cloud_token_that_is_not_ascii_is_refused_naming_the_key_never_the_value(token, tmp_path):
    path = policy_at(
        tmp_path / "p.yaml",
        head="version: 1\naccounts:\n  do: {provider: digitalocean, token: env:DO_TOKEN}\n",
    )
    loaded = load_policy(path, {"DO_TOKEN": token})
    problem = the_problem(loaded, "accounts.do.token")
    assert loaded.targets == [] and problem.line == 3
    assert "not ASCII" in problem.message
    assert TOKEN[:12] not in str(problem) and "7e7e" not in str(problem)


def test_the_default_token_variable_and_the_telegram_bot_token_must_be_ascii(tmp_path):
    head = (
        "version: 1\naccounts:\n  do: {provider: digitalocean}\n"
        "notifications:\n  tg: {type: telegram, bot_token: env:BOT, chat_id: 1}\n"
    )
    loaded = load_policy(
        policy_at(tmp_path / "p.yaml", head=head),
        {"DIGITALOCEAN_TOKEN": NON_ASCII[0], "BOT": "123:AB\u00c7"},
    )
    assert "not ASCII" in the_problem(loaded, "accounts.do").message
    assert "not ASCII" in the_problem(loaded, "notifications.tg.bot_token").message


@pytest.mark.parametrize(
    ("exported", "said"),
    [(None, "no token: set token"), ("", "is set but empty"), ("\n", "is set but blank")],
)
def test_an_account_without_token_says_whether_its_default_variable_is_unset_or_empty(
    tmp_path, exported, said
):
    head = "version: 1\naccounts:\n  do: {provider: digitalocean}\n"
    env = {} if exported is None else {"DIGITALOCEAN_TOKEN": exported}
    loaded = load_policy(policy_at(tmp_path / "p.yaml", head=head), env)
    assert said in the_problem(loaded, "accounts.do").message


def test_a_webhook_secret_may_be_any_text_it_only_keys_the_signature(tmp_path):
    head = HEAD + (
        "notifications:\n  hook: {type: webhook, url: 'https://hooks.example.com/x', secret: "
        "env:SECRET}\n"
    )
    loaded = load_policy(policy_at(tmp_path / "p.yaml", head=head), {"SECRET": "clé-secrète"})
    assert loaded.problems == []


@pytest.mark.parametrize(
    "header, problem_path, words",
    [
        (
            "{Authorization: 'Bearer ab\u00e7'}",
            "notifications.hook.headers.Authorization",
            "not ASCII",
        ),
        ("{'X Token': abc}", "notifications.hook.headers", "is no HTTP header name"),
        ('{X-Token: "a\\nb"}', "notifications.hook.headers.X-Token", "a line break"),
    ],
)
def test_webhook_headers_must_be_sendable(header, problem_path, words, tmp_path):
    head = HEAD + (
        "notifications:\n  hook: {type: webhook, url: 'https://hooks.example.com/x', "
        f"headers: {header}}}\n"
    )
    loaded = load_policy(policy_at(tmp_path / "p.yaml", head=head), {})
    assert loaded.targets == []
    assert words in the_problem(loaded, problem_path).message


@pytest.mark.parametrize("where", ["api_token", "bot_token"])
def test_a_legacy_token_that_is_not_ascii_is_refused_naming_the_key(where, tmp_path):
    bad = NON_ASCII[0]
    bot = bad if where == "bot_token" else "123456:ABCdefGHIjklMNO"
    (tmp_path / "snapshots.config").write_text(
        f"[TELEGRAM]\nenabled = true\nbot_token = {bot}\nchat_id = -100123\n"
    )
    (tmp_path / "configs").mkdir()
    server = {
        "provider": "digitalocean",
        "id": "1",
        "name": "web-1",
        "api_token": bad if where == "api_token" else TOKEN,
        "retain_last_snapshots": 2,
    }
    (tmp_path / "configs" / "web.json").write_text(json.dumps({"digitalocean_droplet": server}))
    loaded = config.load(legacy_config=tmp_path / "snapshots.config", cwd=tmp_path)
    [problem] = [p for p in loaded.errors if "ASCII" in p.message]
    expected = {"api_token": "digitalocean_droplet.api_token", "bot_token": "TELEGRAM.bot_token"}[
        where
    ]
    assert problem.path == expected and TOKEN[:12] not in str(problem)
