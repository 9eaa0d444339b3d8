"""Hetzner labels: the validity rules and the label selector language.

Both follow the "Labels" and "Label Selector" sections of the Hetzner Cloud API description.
Validating labels matters for fidelity: a label value such as an ISO timestamp (it has `:`) is
refused by the real API, and the fake must refuse it too.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?"
_KEY = re.compile(rf"^((?P<prefix>[a-z0-9]([a-z0-9.-]{{0,251}}[a-z0-9])?)/)?{_NAME}$")
_VALUE = re.compile(rf"^({_NAME})?$")

_IN = re.compile(r"^(?P<key>[^\s!=,()]+)\s+(?P<op>in|notin)\s+\((?P<values>[^()]*)\)$")
_COMPARE = re.compile(r"^(?P<key>[^\s!=,()]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^\s!=,()]*)$")
_PRESENT = re.compile(r"^(?P<neg>!?)\s*(?P<key>[^\s!=,()]+)$")

Matcher = Callable[[dict[str, str]], bool]


def label_errors(labels: object) -> list[str]:
    """Every rule the labels break, as sentences; [] when they are valid."""
    if not isinstance(labels, dict):
        return ["labels must be an object of string keys and values"]
    problems = []
    for key, value in labels.items():
        match = _KEY.match(key) if isinstance(key, str) else None
        if match is None:
            problems.append(f"label key {key!r} is not valid")
        elif (match.group("prefix") or "").endswith("hetzner.cloud"):
            problems.append(f"label key {key!r} uses the reserved hetzner.cloud/ prefix")
        if not isinstance(value, str) or not _VALUE.match(value):
            problems.append(f"label value {value!r} of {key!r} is not valid")
    return problems


def parse_selector(selector: str) -> Matcher:
    """Compile a label selector to a predicate over a label dict. ValueError if malformed."""
    terms = [_term(part.strip()) for part in _split(selector)]
    return lambda labels: all(term(labels) for term in terms)


def _split(selector: str) -> list[str]:
    """Split on the commas that separate terms (not those inside `in (...)`)."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    if depth != 0 or any(not part.strip() for part in parts):
        raise ValueError(f"malformed label selector {selector!r}")
    return parts


def _term(term: str) -> Matcher:
    if match := _IN.match(term):
        key, values = match["key"], {v.strip() for v in match["values"].split(",")}
        if match["op"] == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _COMPARE.match(term):
        key, value = match["key"], match["value"]
        if match["op"] == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _PRESENT.match(term):
        key = match["key"]
        if match["neg"]:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise ValueError(f"malformed label selector term {term!r}")
