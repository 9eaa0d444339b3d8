"""Telegram's formatting checks, so a notifier's escaping and plain-text fallback can be tested.

Telegram refuses a message whose `parse_mode` markup it cannot parse, with 400 "Bad Request:
can't parse entities: ...". These checks follow the "Formatting options" section of the Bot
API for `Markdown` (legacy), `MarkdownV2` and `HTML`. They catch what goes wrong in practice
(unbalanced `*`/`_`/backticks, unescaped reserved characters in MarkdownV2, unclosed or
unknown HTML tags); they do not model every corner of Telegram's parser.
"""

from __future__ import annotations

from html.parser import HTMLParser

V2_RESERVED = set("_*[]()~`>#+-=|{}.!")
V2_NAMES = {"*": "Bold", "_": "Italic", "__": "Underline", "~": "Strikethrough", "||": "Spoiler"}
HTML_TAGS = {
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
    "tg-time",
}


class EntityError(ValueError):
    """The markup cannot be parsed; the message is Telegram's wording after the prefix."""


def check(text: str, parse_mode: str | None) -> None:
    """Raise EntityError if Telegram would refuse `text` in `parse_mode` (case-insensitive)."""
    mode = (parse_mode or "").lower()
    if mode == "markdown":
        _check_markdown(text)
    elif mode == "markdownv2":
        _check_markdown_v2(text)
    elif mode == "html":
        _check_html(text)
    elif mode:
        raise EntityError(f"unsupported parse_mode {parse_mode!r}")


def _offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _unclosed(text: str, index: int) -> EntityError:
    offset = _offset(text, index)
    return EntityError(f"Can't find end of the entity starting at byte offset {offset}")


def _check_markdown(text: str) -> None:
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and text[i + 1 : i + 2] in ("_", "*", "`", "["):
            i += 2
            continue
        closer = {"*": "*", "_": "_", "`": "`", "[": "]"}.get(char)
        if text.startswith("```", i):
            closer, char = "```", "```"
        if closer is None:
            i += 1
            continue
        end = text.find(closer, i + len(char))
        if end < 0:
            raise _unclosed(text, i)
        i = end + len(closer)
        if closer == "]" and text.startswith("(", i):
            end = text.find(")", i)
            if end < 0:
                raise _unclosed(text, i)
            i = end + 1


def _check_markdown_v2(text: str) -> None:
    open_marks: list[tuple[str, int]] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            if i + 1 >= len(text) or not 1 <= ord(text[i + 1]) <= 126:
                raise EntityError(
                    "Character '\\' is reserved and must be escaped with the preceding '\\'"
                )
            i += 2
            continue
        if char == "`":
            i = _skip_code(text, i)
            continue
        mark = text[i : i + 2] if text[i : i + 2] in ("__", "||") else char
        if mark in V2_NAMES:
            if open_marks and open_marks[-1][0] == mark:
                open_marks.pop()
            else:
                open_marks.append((mark, i))
            i += len(mark)
            continue
        if char == "[":
            open_marks.append(("[", i))
        elif char == "]" and open_marks and open_marks[-1][0] == "[":
            open_marks.pop()
            if text.startswith("(", i + 1):
                i = _link_end(text, i + 1)
        elif char == ">" and (i == 0 or text[i - 1] == "\n"):
            pass  # a block quotation line
        elif char in V2_RESERVED:
            raise EntityError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        i += 1
    if open_marks:
        mark, index = open_marks[-1]
        name = V2_NAMES.get(mark, "TextUrl")
        raise EntityError(f"Can't find end of {name} entity at byte offset {_offset(text, index)}")


def _link_end(text: str, start: int) -> int:
    """Index of the `)` closing the link URL opened at `start`; a backslash escapes one."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text[i] == ")":
            return i
        else:
            i += 1
    raise _unclosed(text, start)


def _skip_code(text: str, start: int) -> int:
    """Index just after the code or pre entity opened at `start`."""
    fence = "```" if text.startswith("```", start) else "`"
    i = start + len(fence)
    while i < len(text):
        if text[i] == "\\":
            i += 2
        elif text.startswith(fence, i):
            return i + len(fence)
        else:
            i += 1
    kind = "Pre" if fence == "```" else "Code"
    raise EntityError(f"Can't find end of {kind} entity at byte offset {_offset(text, start)}")


class _TagChecker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag not in HTML_TAGS:
            raise EntityError(f'Unsupported start tag "{tag}"')
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open[-1] != tag:
            raise EntityError(f'Unexpected end tag "{tag}"')
        self.open.pop()


def _check_html(text: str) -> None:
    checker = _TagChecker()
    checker.feed(text)
    checker.close()
    if checker.open:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{checker.open[-1]}"')
