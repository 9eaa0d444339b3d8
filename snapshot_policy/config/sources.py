"""Reading config files (YAML, JSON, INI) into plain data, keeping the line of every key.

Validation speaks of keys by path; the line numbers kept here let every problem point at
the line to edit. Anything that stops a file from being read at all becomes a ConfigError
that names the file and the reason, never a traceback.
"""

from __future__ import annotations

import configparser
import io
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from snapshot_policy.config.problems import ConfigError, Problem, path_text

MAX_BYTES = 5 * 1024 * 1024
# YAML aliases let a small file stand for a huge or endless document ("billion laughs",
# an alias inside itself). Past these bounds it is a mistake or an attack, not a config.
MAX_VALUES = 250_000
MAX_DEPTH = 50
# PyYAML's scanner takes time in the square of the flow nesting ([[[…, {{{…): a few thousand
# brackets hold it for seconds before it fails. Past this many open at once, it is not read.
MAX_OPEN_BRACKETS = 200
_BRACKET = re.compile(r"[][{}]")
_MERGE_TAG = "tag:yaml.org,2002:merge"
# The characters YAML allows in a file (YAML 1.1 §5.1). JSON files are held to the same
# rule, so a stray control character is refused in both rather than loaded into a name.
_UNPRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_YAML_ADVICE = {
    "'\\t'": "indent with spaces, not tabs",
    "mapping values are not allowed here": "put quotes around a value that contains ': '",
}

KeyPath = tuple[Any, ...]


@dataclass(frozen=True)
class Source:
    """A file's data, the 1-based line of each key path in it, and what reading it found.

    `problems` are findings that do not stop the file from loading, such as duplicate keys.
    """

    file: str
    data: Any
    lines: Mapping[KeyPath, int] = field(default_factory=dict)
    problems: tuple[Problem, ...] = ()

    def line_of(self, path: Sequence[Any]) -> int | None:
        """Return the line of `path`, or of its nearest parent whose line is known."""
        path = tuple(path)
        for end in range(len(path), -1, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return None


def read_yaml(path: str | Path) -> Source:
    """Read a YAML file with the safe loader. Raise ConfigError if it cannot be read or parsed.

    Duplicate keys, which YAML forbids and PyYAML silently resolves to the last one, are
    returned as problems.
    """
    file = str(path)
    text = _read_text(path)
    _refuse_unprintable(file, text)
    _refuse_deep_brackets(file, text)
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            return Source(file, None)
        lines, problems = _yaml_lines(file, node, loader, duplicates_are_warnings=False)
        return Source(file, loader.construct_document(node), lines, tuple(problems))
    except yaml.MarkedYAMLError as error:
        raise ConfigError([_yaml_syntax_problem(file, error)]) from None
    except yaml.YAMLError as error:
        raise ConfigError([Problem(file, None, "", f"not valid YAML: {error}")]) from None
    except (ValueError, RecursionError) as error:
        raise ConfigError([_unreadable_value(file, error)]) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_json(path: str | Path) -> Source:
    """Read a JSON file. Raise ConfigError if it cannot be read, holds a character YAML
    would refuse as unprintable, or is not JSON.

    Lines are best effort: JSON is read a second time as YAML, which knows lines; when
    that fails the file simply has no line numbers. Duplicate keys, which JSON readers
    resolve to the last one, are returned as warnings.
    """
    file = str(path)
    text = _read_text(path)
    _refuse_unprintable(file, text)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"not valid JSON: {error.msg[:1].lower()}{error.msg[1:]} (column {error.colno})"
        raise ConfigError([Problem(file, error.lineno, "", message)]) from None
    except (ValueError, RecursionError) as error:
        raise ConfigError([_unreadable_value(file, error)]) from None
    # JSON allows tabs where YAML does not; outside strings (where JSON forbids raw tabs)
    # they are plain whitespace, so spaces keep every line where it was.
    loader = None
    try:
        loader = yaml.SafeLoader(text.replace("\t", " "))
        lines, problems = _yaml_lines(
            file, loader.get_single_node(), loader, duplicates_are_warnings=True
        )
    except (yaml.YAMLError, ValueError, RecursionError, ConfigError):
        lines, problems = {}, []
    finally:
        if loader is not None:
            loader.dispose()
    return Source(file, data, lines, tuple(problems))


def read_ini(path: str | Path) -> Source:
    """Read an INI file into {section: {key: raw string}}, as snapshots.py's configparser did,
    but with interpolation off and keys kept as written. Raise ConfigError if it cannot be
    read, has a line that is neither a header nor `key = value`, repeats a section or key, or
    holds nothing but blank lines (whitespace of any kind) and comments, like an empty YAML file.
    """
    file = str(path)
    text = _read_text(path)
    lines = _ini_lines(text)
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    try:
        parser.read_string(text, source=file)
    except configparser.DuplicateSectionError as error:
        first = lines.get((error.section,))
        problem = Problem(
            file,
            error.lineno,
            error.section,
            f"duplicate section [{error.section}] (lines {first} and {error.lineno}); "
            "merge the two into one",
        )
        raise ConfigError([problem]) from None
    except configparser.DuplicateOptionError as error:
        first = lines.get((error.section, error.option))
        problem = Problem(
            file,
            error.lineno,
            f"{error.section}.{error.option}",
            f"duplicate key (lines {first} and {error.lineno}); keep one of them",
        )
        raise ConfigError([problem]) from None
    except configparser.MissingSectionHeaderError as error:
        message = "a key comes before any [SECTION] header; start with a section such as [TELEGRAM]"
        raise ConfigError([Problem(file, error.lineno, "", message)]) from None
    except configparser.ParsingError as error:
        message = "this line is neither a [SECTION] header nor a key = value line"
        raise ConfigError(
            [Problem(file, number, "", message) for number, _ in error.errors]
        ) from None
    if not lines:
        raise ConfigError([Problem(file, None, "", "the file is empty")])
    data = {section: dict(parser.items(section, raw=True)) for section in parser.sections()}
    return Source(file, data, lines)


def _read_text(path: str | Path) -> str:
    """Return the file's text. Raise ConfigError if it is missing, not a readable UTF-8 text
    file, or too large to be a config file."""
    file = str(path)

    def fail(reason: str, line: int | None = None) -> ConfigError:
        return ConfigError([Problem(file, line, "", f"cannot read the file: {reason}")])

    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise fail("it does not exist") from None
    except IsADirectoryError:
        raise fail("it is a directory, not a file") from None
    except PermissionError:
        raise fail("permission denied") from None
    except OSError as error:
        raise fail(error.strerror or str(error)) from None
    if len(raw) > MAX_BYTES:
        raise fail(
            f"it is larger than {MAX_BYTES // (1024 * 1024)} MB, far too large for a config file"
        )
    if b"\0" in raw:
        raise fail("it is a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise fail(
            f"it is not UTF-8 text (byte 0x{raw[error.start]:02x} on line {line})", line
        ) from None


def _refuse_unprintable(file: str, text: str) -> None:
    """Raise ConfigError naming the first character of `text` that YAML does not allow."""
    found = _UNPRINTABLE.search(text)
    if found:
        line = text.count("\n", 0, found.start()) + 1
        message = (
            "cannot read the file: it holds an unprintable character "
            f"(U+{ord(found.group()):04X} on line {line})"
        )
        raise ConfigError([Problem(file, line, "", message)])


def _refuse_deep_brackets(file: str, text: str) -> None:
    """Raise ConfigError if more than MAX_OPEN_BRACKETS brackets are open at once. Brackets
    inside quoted text count too; a config file is nowhere near the bound either way."""
    depth = 0
    for bracket in _BRACKET.finditer(text):
        depth = depth + 1 if bracket.group() in "[{" else max(0, depth - 1)
        if depth > MAX_OPEN_BRACKETS:
            raise ConfigError([Problem(file, None, "", "the file is nested too deeply to read")])


def _yaml_lines(
    file: str, root: yaml.Node | None, loader: yaml.SafeLoader, duplicates_are_warnings: bool
) -> tuple[dict[KeyPath, int], list[Problem]]:
    """Walk the composed nodes: the line of every key and item, and every repeated key.

    Where a key repeats, its line is that of the last one, the one whose value counts.
    Keys merged in with `<<` keep the line where they were written.
    """
    lines: dict[KeyPath, int] = {}
    problems: list[Problem] = []
    stack: list[tuple[KeyPath, yaml.Node]] = [((), root)] if root is not None else []
    visited = 0
    while stack:
        path, node = stack.pop()
        visited += 1
        if visited > MAX_VALUES:
            message = (
                f"the file holds more than {MAX_VALUES:,} values "
                "once its aliases (*name) are expanded"
            )
            raise ConfigError([Problem(file, None, "", message)])
        if len(path) > MAX_DEPTH:
            # enough of the path to find the place; all of it would fill the screen
            outermost = path[:3]
            message = (
                f"nested more than {MAX_DEPTH} levels deep, or an alias (*name) sits inside itself"
            )
            raise ConfigError(
                [Problem(file, lines.get(path[:MAX_DEPTH]), path_text(outermost), message)]
            )
        if isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                lines.setdefault((*path, index), item.start_mark.line + 1)
                stack.append(((*path, index), item))
        elif isinstance(node, yaml.MappingNode):
            last: dict[Any, tuple[int, yaml.Node]] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    merged = (
                        value_node.value
                        if isinstance(value_node, yaml.SequenceNode)
                        else [value_node]
                    )
                    stack.extend((path, source) for source in merged)
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    continue  # a mapping as a key: construction reports it
                key = loader.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in last:
                    problems.append(
                        _duplicate_key(
                            file, (*path, key), last[key][0], line, duplicates_are_warnings
                        )
                    )
                last[key] = (line, value_node)
            for key, (line, value_node) in last.items():
                lines.setdefault((*path, key), line)
                stack.append(((*path, key), value_node))
    return lines, problems


def _duplicate_key(file: str, path: KeyPath, first: int, again: int, warning: bool) -> Problem:
    consequence = "the last one is used" if warning else "keep one of them"
    return Problem(
        file,
        again,
        path_text(path),
        f"duplicate key (lines {first} and {again}); {consequence}",
        warning,
    )


def _yaml_syntax_problem(file: str, error: yaml.MarkedYAMLError) -> Problem:
    mark = error.problem_mark or error.context_mark
    line = mark.line + 1 if mark else None
    parts = []
    if error.context:
        context_line = error.context_mark.line + 1 if error.context_mark else line
        parts.append(
            error.context if context_line == line else f"{error.context} on line {context_line}"
        )
    if error.problem:
        parts.append(error.problem)
    message = "not valid YAML: " + ", ".join(parts)
    for symptom, advice in _YAML_ADVICE.items():
        if symptom in message:
            message += f"; {advice}"
    return Problem(file, line, "", message)


def _unreadable_value(file: str, error: Exception) -> Problem:
    if isinstance(error, RecursionError):
        return Problem(file, None, "", "the file is nested too deeply to read")
    # Python's own advice on raising its limits is not for the user
    reason = str(error).split(";")[0]
    return Problem(file, None, "", f"a value in the file cannot be read: {reason}")


def _ini_lines(text: str) -> dict[KeyPath, int]:
    """Return the line of each section and key, reading lines as configparser does."""
    lines: dict[KeyPath, int] = {}
    section = None
    key_indent = None
    for number, raw in enumerate(io.StringIO(text), start=1):
        stripped = raw.strip()
        indent = len(raw) - len(raw.lstrip())
        if not stripped or stripped[0] in "#;":
            continue
        if key_indent is not None and indent > key_indent:
            continue  # a continuation of the previous value
        header = configparser.ConfigParser.SECTCRE.match(stripped)
        option = configparser.ConfigParser.OPTCRE.match(stripped)
        if header:
            section, key_indent = header.group("header"), None
            lines.setdefault((section,), number)
        elif section is not None and option:
            key_indent = indent
            lines.setdefault((section, option.group("option").rstrip()), number)
    return lines
