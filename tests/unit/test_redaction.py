"""Pieces of a secret are masked as the whole is (issue 19, item 14), and names are escaped
where they could turn or hide the text around them (item 15).

A hook that folds its output, a tool that prints a token in part: what reaches the output is
a fragment with no whole secret to match. Any run of FRAGMENT_LENGTH characters of a secret
(gaps such as line breaks or their escapes aside) must go.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import sys

import click
import pytest

from snapshot_policy.core.redaction import (
    FRAGMENT_LENGTH,
    escape_controls,
    hide,
    mask_fields,
    mask_secrets,
    redact,
    redacted_output,
)
from snapshot_policy.output.logs import RedactingFilter

# 64 characters, none of them in a shape `redact` would catch on its own once cut in two.
TOKEN = "Qv3nB8xLr2Wt7Hka" + "mZ4pD9sF1gJ6cY0u" + "Ae5Ki8Oq2Uw7Xb3N" + "hR6tV1yM4eG9jP0L"
assert len(TOKEN) == 64


def fragments(text: str, secret: str = TOKEN) -> list[str]:
    """Every run of FRAGMENT_LENGTH characters of `secret` that `text` still shows."""
    return [
        secret[i : i + FRAGMENT_LENGTH]
        for i in range(len(secret) - FRAGMENT_LENGTH + 1)
        if secret[i : i + FRAGMENT_LENGTH] in text
    ]


@pytest.mark.parametrize("mask", [mask_secrets, redact], ids=["mask_secrets", "redact"])
def test_a_token_split_across_two_lines_leaves_no_fragment_wherever_it_is_split(mask):
    for cut in range(1, len(TOKEN)):
        lines = [f"hook: {TOKEN[:cut]}", f"hook: {TOKEN[cut:]}"]
        shown = [mask(line, [TOKEN]) for line in lines] + [mask("\n".join(lines), [TOKEN])]
        assert not [piece for text in shown for piece in fragments(text)], (cut, shown)


def test_the_last_24_characters_of_a_folded_token_are_masked():
    assert mask_secrets(f"before: {TOKEN[40:]}", [TOKEN]) == "before: ***"


def test_a_token_with_a_line_break_every_20_characters_is_masked_line_by_line_and_whole():
    lines = [TOKEN[i : i + 20] for i in range(0, len(TOKEN), 20)]
    assert [mask_secrets(line, [TOKEN]) for line in lines] == [
        "***",
        "***",
        "***",
        TOKEN[60:],
    ]  # 4 characters: not a fragment
    assert (
        mask_secrets("printed: " + "\n".join(lines) + "\n(end)", [TOKEN]) == "printed: ***\n(end)"
    )


@pytest.mark.parametrize(
    "gap",
    [
        "\n",
        "\r\n",
        " ",
        "\t",
        "\\n",
        "\\\\n",
        "\\x0a",
        "\\u000a",
        "%0A",
        "\u200b",
        "\ufeff",
        "\\u200b",
    ],
    ids=[
        "newline",
        "CRLF",
        "space",
        "tab",
        "escaped newline",
        "doubly escaped",
        "hex escape",
        "unicode escape",
        "percent-encoded",
        "zero-width space",
        "byte-order mark",
        "escaped zero-width space",
    ],
)
def test_a_fragment_broken_into_pieces_shorter_than_the_limit_is_masked_whole(gap):
    piece = gap.join((TOKEN[30:38], TOKEN[38:46], TOKEN[46:50]))  # 20 characters of it, 8 + 8 + 4
    assert mask_secrets(f"said {piece} (exit 1)", [TOKEN]) == "said *** (exit 1)"


def test_a_fragment_shorter_than_the_limit_and_the_text_around_a_fragment_stay():
    short = TOKEN[20 : 20 + FRAGMENT_LENGTH - 1]
    assert mask_secrets(f"id {short} ok", [TOKEN]) == f"id {short} ok"
    assert mask_secrets(f"a-{TOKEN[3:15]}-b {TOKEN[50:]}.", [TOKEN]) == "a-***-b ***."


def test_fragments_of_two_secrets_side_by_side_and_a_short_secret_inside_a_long_one():
    other = "Zr8Wq2Lx6Nm4Tp0Vk3Hs7Dj1Fb5Gc9Ye"
    assert mask_secrets(f"{TOKEN[10:30]}{other[:14]} {other[-12:]}", [TOKEN, other]) == "***"
    assert mask_secrets(f"x {TOKEN[:12]}-tail", [TOKEN, TOKEN[:8]]) == "x ***-tail"


@pytest.mark.parametrize(
    "text",
    [
        "created web-1-20261126030000 for target web (DigitalOcean droplet 123456789)",
        "deleting k8s-worker-pool-a-node-12-fsn1-20261126030000 (no rule keeps it)",
        "Plan: 1 to create, 2 to delete, 5 to keep, 0 skipped across 2 target(s).",
        '{"id": 123456789, "name": "db-1-20261126030000", "created": "2026-11-26T03:00:00Z"}',
    ],
)
def test_ordinary_text_is_left_alone_with_many_long_secrets_configured(text):
    secrets = [TOKEN[i:] + TOKEN[:i] for i in range(0, 64, 4)]
    assert mask_secrets(text, secrets) == text and redact(text, secrets) == text


def test_the_log_filter_masks_a_token_folded_over_two_records():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter([TOKEN], logging.Formatter()))
    logger = logging.getLogger("tests.unit.test_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("before hook: %s", TOKEN[:40])
        logger.warning("before hook: %s", TOKEN[40:])
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "before hook: ***\nbefore hook: ***\n"


def test_stdout_and_stderr_mask_fragments_of_a_hidden_secret_written_apart(capsys):
    with redacted_output():
        hide([TOKEN])
        click.echo(TOKEN[:40])
        click.echo(TOKEN[40:])
        click.echo(TOKEN[5:25], err=True)
    out, err = capsys.readouterr()
    assert (out, err) == ("***\n***\n", "***\n")


# -- names that turn or hide the text after them (item 15) ----------------------------------------

INVISIBLE = [
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",  # bidi embeddings and overrides
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",  # bidi isolates
    "\u200e",
    "\u200f",
    "\u061c",  # bidi marks
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",  # zero-width characters
]


@pytest.mark.parametrize("char", INVISIBLE, ids=[f"U+{ord(c):04X}" for c in INVISIBLE])
def test_escape_controls_writes_invisible_and_bidi_characters_as_escapes(char):
    assert escape_controls(f"web{char}-1") == f"web\\u{ord(char):04x}-1"


def test_escape_controls_keeps_ordinary_non_ascii_names():
    for name in ("café-1", "データベース-1", "сервер-1", "خادم-1"):
        assert escape_controls(name) == name


def test_a_secret_made_of_words_is_masked_whole_but_its_words_stay():
    """Its pieces are ordinary words: the demo's token holds the provider's name, which every
    plan shows (and `plan --output json` carries as data)."""
    words = "sandbox-demo-digitalocean-token"
    assert (
        mask_secrets(f'"provider": "digitalocean", token {words}', [words])
        == '"provider": "digitalocean", token ***'
    )
    assert (
        mask_secrets(f"{words[:20]}\n{words[20:]}", [words]) == "***"
    )  # whole, in any whitespace variant


def test_the_pieces_of_a_webhook_url_are_those_of_its_path_and_query_not_its_host():
    url = "https://hooks.example.com/services/T024BE7LD/B01K9S2Q4RW/kX7pQm2vNz8LrT4wYb6HcJ3d"
    assert mask_secrets(
        f"cannot reach https://hooks.example.com: timed out; {url[40:70]}", [url]
    ) == ("cannot reach https://hooks.example.com: timed out; ***")
    assert mask_secrets(url, [url]) == "https://hooks.example.com***"


# -- token shapes and configured secrets --

SECRET = "hunter2-configured-secret"
DO_TOKEN = "dop_v1_" + "0123456789abcdef" * 4
HCLOUD_TOKEN = "Jx7Qm2LpV9zK4rT8wN1bY6cH3dF5gS0aE2uI7oP4kM9nB1vC6xZ8qW3eR5tY0uLk"
TELEGRAM_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
FINGERPRINT = "sha256:" + "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"token={DO_TOKEN}", "token=***"),
        (f"token {HCLOUD_TOKEN}.", "token ***."),
        (f"bot{TELEGRAM_TOKEN}/sendMessage", "bot***/sendMessage"),
        ("Authorization: Bearer xyz123", "Authorization: Bearer ***"),
        ('"authorization": "bearer abc"', '"authorization": "bearer ***"'),
        ("key 9f1c2e8a7b6d5c4e3f2a1b0c9d8e7f6a", "key ***"),
        ("X-Api-Key: aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI", "X-Api-Key: ***"),
    ],
)
def test_redact_masks_token_shapes(text, expected):
    assert redact(text, []) == expected


@pytest.mark.parametrize(
    "text",
    [
        "created web-1-20261126030000 for target web (DigitalOcean droplet 123456789)",
        "keeping production-database-primary-01-20261126030000: keep_daily 3",
        "deleting k8s-worker-pool-a-node-12-fsn1-20261126030000 (no rule keeps it)",
        "cx22-ubuntu-24-04-fsn1-web01-20261126030000 on hetzner-cloud-server-nbg1-dc3",
        "at 2026-11-26T03:00:00+00:00 and 2026-11-26T03:00:00.123Z",
        f"plan {FINGERPRINT} matches",
        "internationalization_configuration_management_subsystem is ordinary",
        "my-long-server-name-db-20261126T030000Z",
        "admin 12345",
    ],
)
def test_redact_keeps_ordinary_text(text):
    assert redact(text, ["admin", "12345"]) == text


def test_redact_masks_the_word_after_bearer_even_in_prose():
    # Deliberate: a header value of any length must go, and losing a word of prose is harmless.
    assert redact("the bearer of good news", []) == "the bearer *** good news"


def test_redact_masks_a_longer_secret_before_one_it_contains():
    assert redact("a secret-part-and-more b", ["secret-part", "secret-part-and-more"]) == "a *** b"


# -- whitespace variants and the output streams (issue 12, items 2 and 7) --

# A DigitalOcean token of its own: its marker LEAKunitTOKEN must never show.
LEAKY = "dop_v1_" + "LEAKunitTOKEN" + "4f" * 25


@pytest.mark.parametrize(
    "shown",
    [
        pytest.param(f"'Bearer {LEAKY}\\n'", id="repr of a trailing newline"),
        pytest.param(f"Bearer {LEAKY}\n", id="a real trailing newline"),
        pytest.param(f"'Bearer  {LEAKY}\\r\\n'", id="repr of a CRLF"),
        pytest.param(f'"Bearer {LEAKY}\\\\n"', id="JSON of a repr"),
        pytest.param(f"\t {LEAKY} \t", id="tabs and spaces around"),
        pytest.param(f"{LEAKY[:20]}\n{LEAKY[20:]}", id="a line break inside"),
        pytest.param(f"{LEAKY[:20]}\\n{LEAKY[20:]}", id="an escaped line break inside"),
        pytest.param(f"{LEAKY[:9]} {LEAKY[9:30]}\t{LEAKY[30:]}", id="spaces and tabs inside"),
        pytest.param(f"{LEAKY[:20]}\\x0a{LEAKY[20:]}\\u000d", id="hex and unicode escapes"),
        pytest.param(f"bot{LEAKY[:20]}%0A{LEAKY[20:]}%20/getMe", id="percent-encoded"),
    ],
)
def test_mask_secrets_masks_every_whitespace_variant_of_a_secret(shown):
    masked = mask_secrets(f"failed: {shown} (401)", [LEAKY])
    assert "LEAKunitTOKEN" not in masked and "4f4f4f4f" not in masked
    assert masked.startswith("failed: ") and masked.endswith(" (401)")
    assert "***" in masked


def test_mask_secrets_masks_a_secret_configured_with_whitespace_in_its_trimmed_form():
    assert mask_secrets(f"header 'Bearer {LEAKY}'", [f" {LEAKY}\n"]) == "header 'Bearer ***'"


def test_mask_secrets_keeps_the_text_around_and_short_secrets():
    assert (
        mask_secrets("token hunter2-configured-secret was refused", [SECRET])
        == "token *** was refused"
    )
    assert mask_secrets("admin 12345 a d m i n", ["admin", "12345"]) == "admin 12345 a d m i n"
    assert mask_secrets(
        "web-1-20261126030000 and a long-random-looking-but-unconfigured-name-Xy7Qz9", []
    ) == ("web-1-20261126030000 and a long-random-looking-but-unconfigured-name-Xy7Qz9")


def test_hidden_secrets_are_masked_by_every_later_call_until_the_block_ends(capsys):
    with redacted_output():
        hide([LEAKY])
        assert mask_secrets(f"x {LEAKY}") == "x ***"
        assert redact(f"y {LEAKY}\\n", []) == "y ***\\n"
    assert mask_secrets(f"x {LEAKY}") == f"x {LEAKY}"


def test_redacted_output_masks_stdout_and_stderr_and_restores_them(capsys):
    real = sys.stdout, sys.stderr
    with redacted_output():
        hide([LEAKY])
        click.echo(f"plan: Bearer {LEAKY}\\n")
        click.echo(f"error: {LEAKY[:20]}\n{LEAKY[20:]}", err=True)
        click.echo(f"bytes {LEAKY}".encode())  # click writes bytes to the binary side
        print(f"print {LEAKY}")
        print(f"shape {HCLOUD_TOKEN}", file=sys.stderr)
        print(f"data {HCLOUD_TOKEN}")  # stdout is data: only configured secrets are masked there
    assert (sys.stdout, sys.stderr) == real
    out, err = capsys.readouterr()
    assert out == f"plan: Bearer ***\\n\nbytes ***\nprint ***\ndata {HCLOUD_TOKEN}\n"
    assert err == "error: ***\nshape ***\n"


def test_redacted_output_masks_what_logging_s_last_resort_prints(capsys):
    with redacted_output():
        hide([LEAKY])
        logging.getLogger("nobody.configured.this").warning("retrying with %r", f"Bearer {LEAKY}\n")
    err = capsys.readouterr().err
    assert "retrying with" in err and "LEAKunitTOKEN" not in err


def test_mask_fields_masks_every_string_field_of_a_record():
    @dataclasses.dataclass(frozen=True)
    class Event:
        server_name: str
        error: str | None
        total: int

    assert mask_fields(Event(f"web-{LEAKY}", None, 3), [LEAKY]) == Event("web-***", None, 3)
