"""The JSON Schemas in `schemas/`: finding them, and checking data against them in words a
person can act on.

jsonschema's own messages speak of "additional properties" and "the given schemas"; here
each error becomes a Problem with the key's path, its line and one plain sentence. Every
error is reported at once, so a user fixes a file in one pass.
"""

from __future__ import annotations

import configparser
import copy
import difflib
import functools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from snapshot_policy.config.problems import Problem, path_text
from snapshot_policy.config.sources import Source

SCHEMA_SUFFIX = ".schema.json"
_BOOLEANS = configparser.ConfigParser.BOOLEAN_STATES
_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "an object",
    "array": "a list",
}
_LONGEST_SHOWN = 60


def schema_dir() -> Path:
    """Return the folder of the schema files.

    An installed wheel carries them inside the package (`snapshot_policy/schemas`, copied
    there by the build); a source checkout has them at its top level. Raise
    FileNotFoundError if neither is there, which means a broken install.
    """
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "schemas", package.parent / "schemas"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"the JSON Schemas are missing from {package / 'schemas'} and "
        f"{package.parent / 'schemas'}; reinstall snapshot-policy"
    )


@functools.cache
def load_schema(name: str) -> dict:
    """Return the schema called `name` (`policy` or `policy.schema.json`). Do not modify it: it is
    shared."""
    file = name if name.endswith(SCHEMA_SUFFIX) else name + SCHEMA_SUFFIX
    return json.loads((schema_dir() / file).read_text(encoding="utf-8"))


def default(name: str, pointer: str) -> Any:
    """Return the `default` the schema `name` declares at `pointer`, a path of property names
    ("settings/log/level") or of a definition ("$defs/timeout"); the schema is the one place a
    default is written. Raise KeyError if it declares none there.
    """
    root = load_schema(name)
    node: Mapping = root
    parts = pointer.split("/")
    if parts[0] == "$defs":
        node, parts = root["$defs"][parts[1]], parts[2:]
    for part in parts:
        node = _resolved(node, root)["properties"][part]
    if "default" in node:
        return copy.deepcopy(node["default"])
    resolved = _resolved(node, root)
    if "default" not in resolved:
        raise KeyError(f"{name} declares no default at {pointer}")
    return copy.deepcopy(resolved["default"])


def _resolved(node: Mapping, root: Mapping) -> Mapping:
    while "$ref" in node:
        node = root["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def _is_finite_number(checker: Any, instance: Any) -> bool:
    """JSON has no NaN or infinity, but YAML (`.nan`, `.inf`) and Python's json (`NaN`) read
    them, and NaN passes every minimum and maximum: they are no numbers here."""
    return Draft202012Validator.TYPE_CHECKER.is_type(instance, "number") and (
        not isinstance(instance, float) or math.isfinite(instance)
    )


# Draft 2020-12, with NaN and infinity failing "type": "number" (and so "integer" too).
_FiniteValidator = validators.extend(
    Draft202012Validator,
    type_checker=Draft202012Validator.TYPE_CHECKER.redefine("number", _is_finite_number),
)


@functools.cache
def _validator(name: str) -> Draft202012Validator:
    return _FiniteValidator(load_schema(name))


def coerce_ini(data: Mapping[str, Mapping[str, str]], schema: Mapping) -> dict[str, dict[str, Any]]:
    """Return INI data with each string converted to the type its schema property declares.

    Booleans are read as configparser reads them (true/false, yes/no, on/off, 1/0, any
    case); enum values match in any case. A value that does not convert stays a string,
    so that validation names it.
    """
    sections = schema.get("properties", {})
    return {
        section: {
            key: _coerce(text, sections.get(section, {}).get("properties", {}).get(key, {}))
            for key, text in values.items()
        }
        for section, values in data.items()
    }


def _coerce(text: str, declared: Mapping) -> Any:
    word = text.strip()
    kind = declared.get("type")
    if kind == "boolean":
        return _BOOLEANS.get(word.lower(), text)
    if kind in ("integer", "number"):
        number = _number(word, fractions=kind == "number")
        return text if number is None else number
    for option in declared.get("enum", ()):
        if isinstance(option, str) and option.lower() == word.lower():
            return option
    return text


def _number(word: str, fractions: bool) -> int | float | None:
    """Return the number `word` spells, or None. Infinity and NaN are no numbers here."""
    try:
        return int(word)
    except ValueError:
        if not fractions:
            return None
    try:
        number = float(word)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def validate(data: Any, schema_name: str, source: Source) -> list[Problem]:
    """Check `data`, read from `source`, against a schema (Draft 2020-12).

    Return every problem, those found while reading `source` included, sorted by line;
    an empty list means the data is valid.
    """
    problems = list(source.problems)
    try:
        for error in _validator(schema_name).iter_errors(data):
            problems += _explain(error, source)
    except RecursionError:
        problems.append(Problem(source.file, None, "", "the file is nested too deeply to check"))
    return sorted(dict.fromkeys(problems), key=lambda problem: problem.line or 0)


def _explain(error: ValidationError, source: Source) -> list[Problem]:
    """Return the problems one jsonschema error stands for."""
    path = tuple(error.absolute_path)
    if error.validator in ("oneOf", "anyOf"):
        return _explain_choice(error, source)
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        return [
            _problem(source, path, _unknown_key(key, allowed), key)
            for key in error.instance
            if key not in allowed
        ]
    if error.validator == "required":
        return [
            _problem(source, path, f"missing required key {_show(key)}")
            for key in error.validator_value
            if key not in error.instance
        ]
    if "propertyNames" in error.absolute_schema_path:
        form = _form(error.schema)
        message = f"the name {_show(error.instance)} is not in the expected form: {form}"
        return [_problem(source, path, message, error.instance)]
    return [_problem(source, path, _sentence(error, path))]


def _sentence(error: ValidationError, path: tuple) -> str:
    """Say what is wrong with a value, for the validators the schemas use; jsonschema's words for
    any other."""
    value, limit, schema = error.instance, error.validator_value, error.schema
    match error.validator:
        case "type":
            expected = _type_words([limit] if isinstance(limit, str) else limit)
            if path:
                return f"must be {expected}, not {_describe(value)}{_quote_hint(limit, value)}"
            return (
                "the file is empty"
                if value is None
                else f"the file must hold {expected}, not {_describe(value)}"
            )
        case "minimum":
            return f"must be {limit} or more, not {_show(value)}"
        case "exclusiveMinimum":
            return f"must be more than {limit}, not {_show(value)}"
        case "maximum":
            return f"must be {limit} or less, not {_show(value)}"
        case "exclusiveMaximum":
            return f"must be less than {limit}, not {_show(value)}"
        case "enum":
            return f"must be one of {', '.join(map(str, limit))}, not {_show(value)}"
        case "const":
            inside = f" inside {path[-2]}" if len(path) > 1 and isinstance(path[-2], str) else ""
            return f"must be {_show(limit)}{inside}, not {_show(value)}"
        case "pattern":
            return f"{_show(value)} is not in the expected form: {_form(schema)}"
        case "minLength" if limit == 1:
            return "must not be empty"
        case "minItems" if limit == 1:
            return "must list at least one item"
        case "uniqueItems":
            return "lists the same item more than once"
        case "minProperties" | "maxProperties" if (
            schema.get("minProperties") == schema.get("maxProperties") == 1
        ):
            keys = _or_list(schema.get("properties", {}))
            return (
                f"must have exactly one key: {keys}"
                if path
                else f"the file must have exactly one top-level key: {keys}"
            )
        case "minProperties" if limit == 1:
            return "must have at least one entry"
    return error.message


def _explain_choice(error: ValidationError, source: Source) -> list[Problem]:
    """Explain a failed oneOf/anyOf by the alternative the user most likely meant.

    Alternatives that only require one key each mean "exactly one of these keys". Otherwise
    an alternative whose kind (type, or a const such as a channel's `type`) does not match
    is passed over; when none matches, the kinds are offered together.
    """
    path = tuple(error.absolute_path)
    keys = _alternative_keys(error.validator_value)
    if keys:
        if not isinstance(error.instance, dict):
            return []  # the object's own type error says it
        present = [key for key in keys if key in error.instance]
        message = (
            f"give only one of {_or_list(keys)} (found {_and_list(present)})"
            if present
            else f"missing one of the keys {_or_list(keys)}"
        )
        return [_problem(source, path, message)]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    if not branches:
        return [_problem(source, path, error.message)]
    mismatches = {
        index: [e for e in errors if _is_mismatch(e, len(path))]
        for index, errors in branches.items()
    }
    if all(mismatches.values()):
        merged = _merged_mismatch([e for errors in mismatches.values() for e in errors])
        if merged:
            return [_problem(source, *merged)]
    best = min(branches, key=lambda index: (len(mismatches[index]), len(branches[index])))
    return [problem for sub in branches[best] for problem in _explain(sub, source)]


def _alternative_keys(alternatives: Sequence[Mapping]) -> list[str]:
    """Return the keys of alternatives shaped {"required": [key]}, or [] if any is shaped
    otherwise."""
    if all(
        list(alternative) == ["required"] and len(alternative["required"]) == 1
        for alternative in alternatives
    ):
        return [alternative["required"][0] for alternative in alternatives]
    return []


def _is_mismatch(error: ValidationError, depth: int) -> bool:
    """True if the error says the value is another kind of thing than the alternative describes."""
    return error.validator == "const" or (
        error.validator == "type" and len(error.absolute_path) == depth
    )


def _merged_mismatch(errors: list[ValidationError]) -> tuple[tuple, str] | None:
    """If every alternative failed on the same kind check at the same place, say so once."""
    places = {(error.validator, tuple(error.absolute_path)) for error in errors}
    if len(places) != 1:
        return None
    (validator, path), value = places.pop(), errors[0].instance
    if validator == "type":
        kinds = [
            kind
            for error in errors
            for kind in (
                [error.validator_value]
                if isinstance(error.validator_value, str)
                else error.validator_value
            )
        ]
        return path, f"must be {_type_words(kinds)}, not {_describe(value)}"
    options = list(dict.fromkeys(str(error.validator_value) for error in errors))
    return path, f"must be one of {', '.join(options)}, not {_show(value)}"


def _unknown_key(key: Any, allowed: list[str]) -> str:
    message = f"unknown key {_show(key)}"
    close = closest(key, allowed)
    if close is not None:
        return f"{message}; did you mean {close!r}?"
    return f"{message}; expected {_or_list(allowed)}" if allowed else message


def closest(key: Any, allowed: Iterable[str]) -> str | None:
    """The allowed name `key` was most likely meant to be (case aside), for a did-you-mean."""
    if not isinstance(key, str):
        return None
    by_lower = {name.lower(): name for name in allowed}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[close[0]] if close else None


def _problem(source: Source, path: tuple, message: str, key: Any = None) -> Problem:
    """A problem at `path`; with `key`, on the line of that key inside it."""
    line = source.line_of(path if key is None else (*path, key))
    return Problem(source.file, line, path_text(path), message)


def _form(schema: Mapping) -> str:
    """The expected form of a value: the first sentence of its schema's description, to follow a
    colon."""
    sentence = schema.get("description", f"text matching {schema.get('pattern')}").split(". ")[0]
    return sentence[:1].lower() + sentence[1:].rstrip(".")


def _quote_hint(expected: Any, value: Any) -> str:
    """YAML reads `owner: 0123456789` or `name: yes` as a number or a boolean; say how to keep
    the text as written."""
    if expected == "string" and isinstance(value, bool | int | float):
        return "; put it in quotes to keep it as text"
    return ""


def _type_words(kinds: Iterable[str]) -> str:
    return " or ".join(dict.fromkeys(_TYPE_WORDS.get(kind, kind) for kind in kinds))


def _describe(value: Any) -> str:
    """Name the kind of a value, with the value where it is short: `the string '3'`."""
    if value is None or isinstance(value, bool):
        return _show(value)
    if isinstance(value, str):
        return f"the string {_show(value)}"
    if isinstance(value, float) and not math.isfinite(value):
        return _show(value)
    if isinstance(value, (int, float)):
        return f"the number {_show(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _show(value: Any) -> str:
    """Quote a scalar as the user wrote it, cut short if long; name anything else by its kind."""
    if value is None:
        return "an empty value"
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, str):
        return repr(_shortened(value))
    if isinstance(value, (int, float)):
        try:
            return _shortened(repr(value))
        except ValueError:  # an integer longer than Python will print
            return "a number too long to show"
    return _describe(value)


def _shortened(text: str) -> str:
    return text if len(text) <= _LONGEST_SHOWN else text[: _LONGEST_SHOWN - 3] + "..."


def _or_list(words: Iterable[str]) -> str:
    return _joined(list(words), "or")


def _and_list(words: Iterable[str]) -> str:
    return _joined(list(words), "and")


def _joined(words: list[str], conjunction: str) -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {conjunction} {words[-1]}"
