"""The one place where secrets are masked (docs/promises.md §5, invariant 8), and names made
printable.

Every byte the tool emits passes `mask_secrets`: log records (a filter on every handler, in
`logs`), stdout and stderr (`redacted_output` wraps them for a command), every state file
(`statefiles` masks what it writes) and the fields notifications carry. It masks each secret
the configuration holds in every whitespace variant — with spaces, tabs, line breaks or their
escapes (`\\n`, `\\x0a`, `%0A`) around or inside it — because a secret is echoed as often in
the repr of a header or the JSON of an error as verbatim. A generated secret (a token, as
`_looks_random` tells; of a URL, its path and query) is also masked wherever FRAGMENT_LENGTH of
its characters run together, because output that folds a line, or prints a token in part,
shows a piece of it with no whole to match. A secret made of words is masked whole only: its
pieces are ordinary words — the demo's `sandbox-demo-digitalocean-token` holds `digitalocean`,
which every plan shows — and a URL's scheme and host are shown on purpose, where an error says
where a request went.

Logs and stderr add a second layer, `redact`: strings shaped like tokens, which catches a
secret the configuration never named (an SDK echoing a header, a token pasted into a server
name). stdout and state files do not: they carry data (`plan --output json`, a saved plan,
the journal) in which a random-looking server name must survive as it is.

`escape_controls` writes control characters, line breaks and the characters that show nothing
or turn the text's direction (zero-width spaces, bidi overrides), which a name from an API may
hold, as escapes, so no name can forge a line of a log or of the plan, or hide or reorder what
follows it on a terminal.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TextIO, TypeVar

_Record = TypeVar("_Record")

MASK = "***"
# Shorter configured values are left alone: masking `admin` or `12345` would garble ordinary text.
MIN_SECRET_LENGTH = 6
# A run of this many characters of a generated secret is taken as showing it. Ordinary text
# matches only by holding those exact characters, which for a token is as good as never.
FRAGMENT_LENGTH = 12
_PROBE_LENGTH = FRAGMENT_LENGTH // 2

_TOKEN_SHAPES = re.compile(
    # a plan's fingerprint: public, and needed to match plans
    r"(?P<fingerprint>sha256:[0-9a-fA-F]{64})"
    r"|(?P<bearer>(?i:\bbearer)\s+)[^\s'\",;]+"
    r"|dop_v1_[0-9a-f]{64}"  # DigitalOcean personal access token
    r"|\d{6,12}:[A-Za-z0-9_-]{30,}"  # Telegram bot token, also inside .../bot<token>/sendMessage
    r"|(?P<run>(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{32,}(?![A-Za-z0-9_-]))"
)
_CHARACTER_CLASSES = re.compile(r"[a-z]+|[A-Z]+|[0-9]+")

# Characters that show nothing or change the direction of the text after them: zero-width
# spaces and joiners, the byte-order mark, and the bidi marks, embeddings, overrides and isolates.
_INVISIBLE = "\u061c\u200b-\u200f\u202a-\u202e\u2060\u2066-\u2069\ufeff"

# What may stand between the characters of a secret as it is echoed: whitespace itself, invisible
# characters, their escapes in Python reprs and JSON (`\\n`, `\\\\n`, `\\x0a`, `\\u000a`, `\\0`),
# and their percent-encoding in a URL. Used around and inside a secret alike.
_GAP = (
    rf"(?:[\s{_INVISIBLE}]"
    r"|\\+[nrtvfab0]"
    r"|\\+x(?:[01][0-9a-fA-F]|7[fF]|20|85|[aA]0)"
    r"|\\+u(?:00[01][0-9a-fA-F]|007[fF]|0020|0085|00[aA]0|20[0-2][0-9a-fA-F]"
    r"|205[fF]|206[0-9]|3000|061[cC]|[fF][eE][fF][fF])"
    r"|%(?:[01][0-9a-fA-F]|7[fF]|20))"
)
# Runs of gaps, to take out of a text before looking for fragments. The lookahead lets the
# search skip, in C, every character that cannot start one.
_GAPS = re.compile(rf"(?=[\s{_INVISIBLE}\\%])(?:{_GAP})+")
# The scheme and host of a URL (no user or password): shown on purpose, where an error says where
# a request went; a webhook URL keeps its secret in the path and query.
_ORIGIN = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#@]*(?=[/?#]|$)")
# Characters that a secret never holds once loaded, and that are left out when matching it.
_BLANK = re.compile(rf"[\s\x00-\x1f\x7f-\x9f{_INVISIBLE}]+")
# Written as escapes wherever names are shown: C0 and C1 controls, DEL, Unicode line
# separators, and the invisible characters.
_CONTROL = re.compile(rf"[\x00-\x1f\x7f-\x9f\u2028\u2029{_INVISIBLE}]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


# The secrets of the command being run (`hide`), masked in everything written meanwhile.
_in_force: tuple[str, ...] = ()


def mask_secrets(text: str, secrets: Iterable[str] = ()) -> str:
    """Return `text` with each of `secrets`, and each secret in force (`hide`), replaced by `***`
    wherever it appears in any whitespace variant, and, for a secret that looks generated, every
    run of FRAGMENT_LENGTH or more of its characters too (folded across lines, or shown in part).

    A variant is the secret with whitespace, invisible characters (`\\u200b`) or their escapes
    (`\\n`, `\\x0a`, `\\u000a`, `%0A`, also doubly escaped) before, after or between any of its
    characters; the masked span is the secret's own characters and what lies between them.
    Secrets shorter than MIN_SECRET_LENGTH characters (not counting whitespace) are not masked;
    those shorter than FRAGMENT_LENGTH, or made of words (see _looks_random), only whole.
    """
    masker = _masker(_in_force, tuple(secrets))
    return text if masker is None else masker.mask(text)


@functools.lru_cache(maxsize=32)
def _masker(in_force: tuple[str, ...], secrets: tuple[str, ...]) -> _SecretMasker | None:
    """The masker of `in_force` and `secrets`, made once: hashing the two tuples costs a
    logging call far less than a set of hundreds of secrets made anew each time."""
    cores = {_BLANK.sub("", s) for s in (*in_force, *secrets)}
    cores = {c for c in cores if len(c) >= MIN_SECRET_LENGTH}
    return _SecretMasker(cores) if cores else None


class _SecretMasker:
    """Masks a set of secrets: a generated one of FRAGMENT_LENGTH characters or more by every run
    of FRAGMENT_LENGTH of its characters; the others whole, in any whitespace variant (one pattern).

    Fragments are looked for in the text with its gaps taken out, so a piece folded by line
    breaks or escapes counts as the run it is. A run of FRAGMENT_LENGTH holds one of the slices
    that start at 0, 6, 12, … of that text (`_PROBE_LENGTH` = 6 characters each); only a slice
    found in some secret is looked at closer. So text without a secret costs one pass to take
    the gaps out and a set lookup per six characters, however many secrets there are.
    """

    def __init__(self, cores: Iterable[str]) -> None:
        generated = {core: part for core in cores if (part := _generated_part(core)) is not None}
        whole = sorted((c for c in cores if c not in generated), key=lambda c: (-len(c), c))
        gaps = f"{_GAP}*"
        self._whole = (
            re.compile("|".join(gaps.join(map(re.escape, core)) for core in whole))
            if whole
            else None
        )
        runs = generated.values()
        self._windows = {
            run[i : i + FRAGMENT_LENGTH]
            for run in runs
            for i in range(len(run) - FRAGMENT_LENGTH + 1)
        }
        self._probes = {
            run[i : i + _PROBE_LENGTH] for run in runs for i in range(len(run) - _PROBE_LENGTH + 1)
        }

    def mask(self, text: str) -> str:
        # Fragments first: a secret masked whole inside a generated one would leave the rest of it.
        if self._windows:
            text = self._mask_fragments(text)
        return text if self._whole is None else self._whole.sub(MASK, text)

    def _mask_fragments(self, text: str) -> str:
        flat = _GAPS.sub("", text)
        probes, step = self._probes, _PROBE_LENGTH
        found = [
            at for at in range(0, len(flat) - step + 1, step) if flat[at : at + step] in probes
        ]
        if not found:
            return text
        windows, width = self._windows, FRAGMENT_LENGTH
        starts = sorted(
            {
                start
                for at in found
                for start in range(max(0, at - step + 1), at + 1)
                if flat[start : start + width] in windows
            }
        )
        if not starts:
            return text
        places = _flat_to_raw(text)
        pieces, done = [], 0
        for first, end in _merged((start, start + width) for start in starts):
            pieces += [text[done : places[first]], MASK]
            done = places[end - 1] + 1
        return "".join(pieces) + text[done:]


def _generated_part(secret: str) -> str | None:
    """What of `secret` (gaps taken out) has its pieces masked: all of it, or a URL's path and
    query; None when that is shorter than FRAGMENT_LENGTH or made of words (see _looks_random)."""
    flat = _GAPS.sub("", secret)
    origin = _ORIGIN.match(flat)
    part = flat[origin.end() :] if origin else flat
    return part if len(part) >= FRAGMENT_LENGTH and _looks_random(part) else None


def _flat_to_raw(text: str) -> list[int]:
    """For each character of `text` with its gaps taken out, where it stands in `text`."""
    places: list[int] = []
    done = 0
    for gap in _GAPS.finditer(text):
        places += range(done, gap.start())
        done = gap.end()
    return places + list(range(done, len(text)))


def _merged(spans: Iterable[tuple[int, int]]) -> Iterator[tuple[int, int]]:
    """Sorted half-open `spans` with those that overlap or touch joined."""
    current: tuple[int, int] | None = None
    for start, end in spans:
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None:
            yield current
        current = (start, end)
    if current is not None:
        yield current


def mask_fields(record: _Record, secrets: Iterable[str] = ()) -> _Record:
    """Return a copy of the dataclass instance `record` with each string field passed through
    `mask_secrets`: for values that are rendered into a message later (a notification's
    event), where escaping would otherwise split a secret apart before it could be masked."""
    secrets = tuple(secrets)
    changes = {}
    for field in dataclasses.fields(record):  # type: ignore[arg-type]
        value = getattr(record, field.name)
        if isinstance(value, str):
            changes[field.name] = mask_secrets(value, secrets)
    return dataclasses.replace(record, **changes)  # type: ignore[type-var]


def redact(text: str, secrets: Iterable[str]) -> str:
    """Return `text` with every configured secret (see mask_secrets) and every token-shaped
    string replaced by `***`.

    Token shapes: DigitalOcean tokens, Telegram bot tokens, the value after `Bearer`, and runs
    of 32 or more `[A-Za-z0-9_-]` that look random (see _looks_random). `sha256:` fingerprints
    are kept.
    """
    return _TOKEN_SHAPES.sub(_mask_token, mask_secrets(text, secrets))


def hide(secrets: Iterable[str]) -> None:
    """Mask `secrets` too, everywhere, until the enclosing `redacted_output` block ends (for the
    rest of the process outside one): the command line calls this once the configuration is
    loaded, so stdout, stderr, logs and state files mask what it holds."""
    global _in_force
    _in_force = tuple(sorted({*_in_force, *(s for s in secrets if s)}))


@contextmanager
def redacted_output() -> Iterator[None]:
    """For the block, send stdout through `mask_secrets` and stderr through `redact`; on leaving
    it, restore both streams and forget the secrets `hide` added inside it.

    Streams are looked up when written to, so everything that writes to `sys.stdout` or
    `sys.stderr` in the block is masked: click, logging's last-resort handler, warnings,
    tracebacks printed by the command. Each write is masked as a whole.
    """
    global _in_force
    saved = (_in_force, sys.stdout, sys.stderr)
    sys.stdout = _MaskingStream(sys.stdout, mask_secrets)
    sys.stderr = _MaskingStream(sys.stderr, lambda text: redact(text, ()))
    try:
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        _in_force, sys.stdout, sys.stderr = saved


class _MaskingStream(io.TextIOBase):
    """A text stream that masks each write before passing it on.

    Its `buffer`, for whoever writes bytes (click does, for bytes messages), masks as well: the
    real binary stream beneath is never handed out.
    """

    def __init__(self, stream: TextIO, mask: Callable[[str], str]) -> None:
        super().__init__()
        self._stream = stream
        self._mask = mask
        self.buffer = _MaskingBinary(stream, mask)

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        self._stream.write(self._mask(text))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return self._stream.isatty()

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "encoding", None)

    @property
    def errors(self) -> str | None:  # type: ignore[override]
        return getattr(self._stream, "errors", None)

    def close(self) -> None:
        """Leave the real stream open: it belongs to whoever made it."""


class _MaskingBinary(io.RawIOBase):
    """The bytes side of a _MaskingStream: decodes each write, masks it, and passes it on in
    the real stream's encoding; bytes that do not decode pass unchanged (surrogateescape)."""

    def __init__(self, stream: TextIO, mask: Callable[[str], str]) -> None:
        super().__init__()
        self._stream = stream
        self._mask = mask
        self._encoding = getattr(stream, "encoding", None) or "utf-8"

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        raw = bytes(data)
        text = self._mask(raw.decode(self._encoding, errors="surrogateescape"))
        binary = getattr(self._stream, "buffer", None)
        if binary is None:
            self._stream.write(
                text.encode(self._encoding, errors="surrogateescape").decode(
                    self._encoding, errors="replace"
                )
            )
        else:
            self._stream.flush()
            binary.write(text.encode(self._encoding, errors="surrogateescape"))
        return len(raw)

    def flush(self) -> None:
        binary = getattr(self._stream, "buffer", None)
        (binary or self._stream).flush()

    def close(self) -> None:
        """Leave the real stream open: it belongs to whoever made it."""


def escape_controls(text: str, keep: str = "") -> str:
    """Return `text` with control characters, line separators and invisible characters (except
    those in `keep`) written as escapes: `\\n`, `\\r`, `\\t`, `\\x1b`, `\\u2028`, `\\u202e`."""

    def escaped(match: re.Match[str]) -> str:
        char = match[0]
        if char in keep:
            return char
        return _ESCAPES.get(char) or (
            f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"
        )

    return _CONTROL.sub(escaped, text)


def _mask_token(match: re.Match[str]) -> str:
    if match["fingerprint"]:
        return match[0]
    if match["bearer"]:
        return match["bearer"] + MASK
    if match["run"] and not _looks_random(match["run"]):
        return match[0]
    return MASK


def _looks_random(run: str) -> bool:
    """True when `run` mixes letters and digits and switches between lowercase, uppercase and
    digits at least once every five characters.

    Generated tokens switch often; names and words do not: `web-1-20261126030000` or
    `production-database-01-20261126030000` switch once or twice in 20 to 45 characters. Used
    for token-shaped runs of text and for the secrets whose pieces are masked.
    """
    plain = run.replace("-", "").replace("_", "")
    if not (re.search(r"[0-9]", plain) and re.search(r"[A-Za-z]", plain)):
        return False
    switches = len(_CHARACTER_CLASSES.findall(plain)) - 1
    return switches * 5 >= len(run)
