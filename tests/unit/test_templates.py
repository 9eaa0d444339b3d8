"""Which notification templates pass validation: plain `{name}` placeholders of known variables
only."""

from __future__ import annotations

import pytest

from snapshot_policy.core.templates import VARIABLES, template_errors

PLAIN_ONLY = (
    "but only plain placeholders work here, without a format spec (:), conversion (!) or lookup "
    "(. or []); write"
)


def test_plain_placeholders_of_every_variable_are_fine():
    assert template_errors(" ".join("{" + name + "}" for name in VARIABLES) + " {{literal}}") == []


def test_an_unknown_variable_names_the_known_ones_without_the_deprecated_spellings():
    assert template_errors("{sever_name}") == [
        "uses unknown variable {sever_name}; known: script, provider, server_name, "
        "server_id, snapshot_name, "
        "total_snapshots, snapshot_info, status, hostname, timestamp"
    ]


@pytest.mark.parametrize(
    "template, written, plain",
    [
        # issue 12: 3.6 GB apply
        ("{total_snapshots:>300000000}", "{total_snapshots:>300000000}", "{total_snapshots}"),
        ("{total_snapshots:,}", "{total_snapshots:,}", "{total_snapshots}"),
        ("{server_name!r}", "{server_name!r}", "{server_name}"),
        ("{status!s:>9}", "{status!s:>9}", "{status}"),
        ("{server_name.__class__}", "{server_name.__class__}", "{server_name}"),
        ("{server_id[0]}", "{server_id[0]}", "{server_id}"),
        ("{timestamp:{server_name}}", "{timestamp:{server_name}}", "{timestamp}"),
    ],
)
def test_a_format_spec_conversion_or_lookup_is_an_error(template, written, plain):
    assert template_errors(f"ok {{server_name}} {template}") == [
        f"writes {written}, {PLAIN_ONLY} {plain}"
    ]


def test_a_long_spec_is_shown_short():
    [message] = template_errors("{total_snapshots:>" + "9" * 10_000 + "}")
    assert (
        message.startswith("writes {total_snapshots:>" + "9" * 18 + "...}, but only plain")
        and len(message) < 200
    )


def test_a_stray_brace_is_an_error():
    assert template_errors("{server_name") == [
        "has a stray brace (expected '}' before end of string); write {{ and }} for literal braces"
    ]


def test_other_placeholder_sets_take_their_own_names_and_noun():
    fields = ("server_name", "timestamp")
    assert template_errors("{server_name}-{timestamp}", fields, "field") == []
    assert template_errors("{hostname}-{timestamp:%Y}", fields, "field") == [
        "uses unknown field {hostname}; known: server_name, timestamp",
        f"writes {{timestamp:%Y}}, {PLAIN_ONLY} {{timestamp}}",
    ]
