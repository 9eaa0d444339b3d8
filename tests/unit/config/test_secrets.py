"""Secret values (config/secrets.py; docs/promises.md §4.2, §5 invariant 8).

Proves: a literal, `env:` or `file:` secret is trimmed of surrounding whitespace (a file's
byte-order mark too); whitespace or a control character inside is a SecretError that says
what is wrong and never shows any of the value, which the policy loader attaches to the key;
and a config file that holds a secret literally and is readable by group or others gets an
ssh-style warning with the `chmod 600` that fixes it. Placeholders that count as unset are
exactly snapshots.py's own (and the sample API tokens); a real URL starting `your-` is a URL.
"""

from __future__ import annotations

import json

import pytest

from snapshot_policy import config
from snapshot_policy.config.policy import load_policy
from snapshot_policy.config.secrets import SecretError, clean, is_placeholder, resolve, unprotected

TOKEN = "dop_v1_" + "LEAKconfTOKEN" + "7e" * 25


@pytest.mark.parametrize("around", ["{}\n", "{}\r\n", " {}", "\t{} \n\n", "\u00a0{}\u2028"])
def test_resolve_trims_a_literal_and_an_environment_variable(around, tmp_path):
    assert resolve(around.format(TOKEN), {}, tmp_path) == TOKEN
    assert resolve("env:DO_TOKEN", {"DO_TOKEN": around.format(TOKEN)}, tmp_path) == TOKEN


@pytest.mark.parametrize("content", ["{}\n", "{}\r\n", "\ufeff{}\n", "\n  {}  \n\n"])
def test_resolve_trims_a_secret_file(content, tmp_path):
    (tmp_path / "token").write_text(content.format(TOKEN), encoding="utf-8")
    assert resolve("file:token", {}, tmp_path) == TOKEN


@pytest.mark.parametrize(
    "inside, kind",
    [
        ("\n", "a line break"),
        ("\r\n", "a line break"),
        (" ", "a space"),
        ("\t", "a space"),
        ("\x1b", "a control character"),
        ("\x00", "a control character"),
        ("\u200b", "a control character"),
    ],
)
def test_whitespace_or_a_control_character_inside_is_an_error_that_shows_no_part_of_the_value(
    inside, kind, tmp_path
):
    value = TOKEN[:25] + inside + TOKEN[25:]
    (tmp_path / "token").write_text(value + "\n", encoding="utf-8")
    for reference, env, what in (
        (value, {}, "the value"),
        ("env:DO_TOKEN", {"DO_TOKEN": value}, "the value of environment variable DO_TOKEN"),
        ("file:token", {}, f"the secret in file {tmp_path / 'token'}"),
    ):
        with pytest.raises(SecretError) as raised:
            resolve(reference, env, tmp_path)
        message = str(raised.value)
        assert message.startswith(f"{what} has {kind} inside it (not shown here)")
        assert "LEAK" not in message and TOKEN[:8] not in message and "7e7e" not in message


@pytest.mark.parametrize("value", ["", "  ", "\n"])
def test_an_empty_secret_is_an_error(value, tmp_path):
    with pytest.raises(SecretError, match="is empty"):
        clean(value)
    holds = "empty;" if not value else r"blank \(only whitespace\);"
    with pytest.raises(SecretError, match=f"DO_TOKEN is set but {holds} export the token"):
        resolve("env:DO_TOKEN", {"DO_TOKEN": value}, tmp_path)


def test_an_unset_variable_is_called_unset(tmp_path):
    with pytest.raises(SecretError, match="environment variable DO_TOKEN is not set; export it"):
        resolve("env:DO_TOKEN", {}, tmp_path)


def test_the_policy_loader_names_the_key_of_a_secret_with_a_line_break_inside(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\naccounts:\n  do: {provider: digitalocean, token: env:DO_TOKEN}\n"
        "targets:\n  - {name: web, account: do, ids: [1], retention: {keep_last: 2}}\n"
    )
    loaded = load_policy(policy, {"DO_TOKEN": TOKEN[:30] + "\n" + TOKEN[30:]})
    assert loaded.targets == []
    [problem] = loaded.problems
    assert (problem.line, problem.path) == (3, "accounts.do.token")
    assert problem.message.startswith(
        "the value of environment variable DO_TOKEN has a line break inside it"
    )
    assert TOKEN[:30] not in str(problem) and TOKEN[30:] not in str(problem)


def test_the_policy_loader_trims_a_literal_token(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(
        f'version: 1\naccounts:\n  do: {{provider: digitalocean, token: "  {TOKEN}\\n"}}\n'
        "targets:\n  - {name: web, account: do, ids: [1], retention: {keep_last: 2}}\n"
    )
    loaded = load_policy(policy, {})
    assert [t.account.token for t in loaded.targets] == [TOKEN]


def test_unprotected_warns_of_a_file_holding_a_secret_that_others_can_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a file is named as short as it can be: here, by its name
    open_file, closed_file, no_secret = (
        tmp_path / "open.yaml",
        tmp_path / "closed.yaml",
        tmp_path / "refs.yaml",
    )
    for path in (open_file, closed_file):
        path.write_text(f"token: {TOKEN}\n")
    no_secret.write_text("token: env:DO_TOKEN\n")
    open_file.chmod(0o644)
    closed_file.chmod(0o600)
    no_secret.chmod(0o644)
    warnings = unprotected(
        [open_file, closed_file, no_secret, open_file, tmp_path / "missing.json"], [TOKEN]
    )
    assert warnings == ["warning: run chmod 600 open.yaml (it holds a secret, mode 0644)"]


@pytest.mark.parametrize("mode", [0o640, 0o604])
def test_unprotected_says_the_mode(mode, tmp_path):
    path = tmp_path / "droplet.json"
    path.write_text(f'{{"api_token": "{TOKEN}"}}')
    path.chmod(mode)
    [warning] = unprotected([path], [TOKEN])
    assert warning.endswith(f"droplet.json (it holds a secret, mode {mode:04o})")
    assert TOKEN not in warning


# -- secrets the loaders read without `resolve`: the default token variable and legacy files

POLICY_WITHOUT_TOKEN = (
    "version: 1\naccounts:\n  do: {provider: digitalocean}\ntargets:\n"
    "  - {name: web, account: do, ids: [1], retention: {keep_last: 2}}\n"
)


def test_the_default_token_variable_is_trimmed(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY_WITHOUT_TOKEN)
    loaded = load_policy(policy, {"DIGITALOCEAN_TOKEN": TOKEN + "\n"})
    assert [t.account.token for t in loaded.targets] == [TOKEN]


def test_the_default_token_variable_with_a_line_break_inside_is_an_error_naming_the_account(
    tmp_path,
):
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY_WITHOUT_TOKEN)
    loaded = load_policy(policy, {"DIGITALOCEAN_TOKEN": TOKEN[:30] + "\n" + TOKEN[30:]})
    [problem] = loaded.problems
    assert (
        problem.path == "accounts.do"
        and "DIGITALOCEAN_TOKEN has a line break inside it" in problem.message
    )
    assert TOKEN[:30] not in str(problem)


def legacy_layout(folder, api_token: str, bot_token: str) -> None:
    (folder / "snapshots.config").write_text(
        f"[TELEGRAM]\nenabled = true\nbot_token = {bot_token}\nchat_id = -100123\n"
    )
    (folder / "configs").mkdir()
    server = {
        "provider": "digitalocean",
        "id": "1",
        "name": "web-1",
        "api_token": api_token,
        "retain_last_snapshots": 2,
    }
    (folder / "configs" / "web.json").write_text(json.dumps({"digitalocean_droplet": server}))


def test_legacy_tokens_are_trimmed(tmp_path):
    legacy_layout(tmp_path, f" {TOKEN}\r\n", "123456:ABCdefGHIjklMNO")
    loaded = config.load(legacy_config=tmp_path / "snapshots.config", cwd=tmp_path)
    assert loaded.errors == ()
    assert [t.account.token for t in loaded.targets] == [TOKEN]


@pytest.mark.parametrize(
    "where, api_token, bot_token",
    [
        (
            "digitalocean_droplet.api_token",
            TOKEN[:30] + "\n" + TOKEN[30:],
            "123456:ABCdefGHIjklMNO",
        ),
        ("TELEGRAM.bot_token", TOKEN, "123456:ABCdef\n  GHIjklMNO"),  # an INI continuation line
    ],
    ids=["server file api_token", "INI bot_token"],
)
def test_a_legacy_token_with_a_line_break_inside_is_an_error_naming_the_key(
    where, api_token, bot_token, tmp_path
):
    legacy_layout(tmp_path, api_token, bot_token)
    loaded = config.load(legacy_config=tmp_path / "snapshots.config", cwd=tmp_path)
    [problem] = [p for p in loaded.errors if "inside it" in p.message]
    assert (
        problem.path == where and "has a line break inside it (not shown here)" in problem.message
    )
    assert TOKEN[:30] not in str(problem) and "GHIjklMNO" not in str(problem)


# -- placeholders: exactly snapshots.py's (issue 21, item 6) ----------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "  ",
        "your_telegram_bot_token_here",
        "YOUR_TELEGRAM_BOT_TOKEN",
        " your_telegram_chat_id_here\n",
        "your_telegram_chat_id",
        "https://your-webhook-url.com/notify",
        "your-webhook-url.com",
        "your_webhook_url_here",
        "your_digitalocean_api_token_1",
        "your_hetzner_api_token_2",
    ],
)
def test_the_old_scripts_placeholders_count_as_unset(value):
    assert is_placeholder(value)


@pytest.mark.parametrize(
    "value",
    [
        "https://your-team.app.n8n.cloud/webhook/snapshots",
        "http://your-n8n.lan:5678/webhook/x",
        "your_backup.log",
        "your-server",
        "your_chat_id",
        "https://your-webhook-url.com/notify/2",
        "7311234567:AAHk3mX9pQ2rS5tU8vW1yZ4bC7dE0fG3hJ6",
        3,
        None,
    ],
)
def test_anything_else_is_a_real_value(value):
    assert not is_placeholder(value)


def test_a_real_url_starting_with_your_is_the_webhook_a_legacy_folder_calls(tmp_path):
    """snapshots.py posted to it; only its own sample URL stood for "unset"."""
    (tmp_path / "configs").mkdir()
    server = {
        "provider": "hetzner",
        "id": 4711,
        "name": "db-1",
        "api_token": "hz-token",
        "retain_last_snapshots": 2,
        "webhook": {"enabled": True, "url": "https://your-team.app.n8n.cloud/webhook/x"},
    }
    (tmp_path / "configs" / "db.json").write_text(json.dumps({"hetzner_cloud_server": server}))
    (tmp_path / "snapshots.config").write_text("[TELEGRAM]\nenabled = false\n")
    [target] = config.load(cwd=tmp_path).targets
    assert [c.url for c in target.notify] == ["https://your-team.app.n8n.cloud/webhook/x"]
    server["webhook"]["url"] = "https://your-webhook-url.com/notify"
    (tmp_path / "configs" / "db.json").write_text(json.dumps({"hetzner_cloud_server": server}))
    [target] = config.load(cwd=tmp_path).targets
    assert target.notify == ()
