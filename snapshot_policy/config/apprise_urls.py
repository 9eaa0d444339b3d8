"""Checking the URLs of an apprise channel (issue 21, item 12) when the policy loads, so a
wrong one is a configuration error naming its key, not a failed message at 3 a.m.

apprise is loaded (`core.apprise_loader`) only when a policy has an apprise channel: a policy
without one, and every command that loads no configuration, never pays for it. Its logger is
kept from the console while a URL is read: what it says of a URL may quote it, a secret.

The URLs are secrets (docs/promises.md §5, invariant 8): a message here names the key and
the scheme, never the URL. What of a URL must be masked besides the URL whole: what apprise
itself hides when it shows a URL in privacy mode (tokens, passwords, keys: `parts_to_mask`),
and, because privacy mode leaves much out (an ntfy topic is the secret of the topic, and
apprise shows it), every piece of the URL that looks like one (`pieces`).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from snapshot_policy.core import apprise_loader, transport

SERVICES = "https://github.com/caronc/apprise/wiki"
EXAMPLES = "ntfys://ntfy.sh/TOPIC, slack://TOKEN_A/TOKEN_B/TOKEN_C, mailtos://USER:PASSWORD@HOST"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_PIECES = re.compile(r"[/?&=@:#,]")
MIN_PIECE = 6  # shorter pieces are words of the URL's form, and redaction ignores them anyway
_NOT_SECRET = frozenset({"bool", "int", "float", "choice:string", "choice:int", "choice:float"})


@dataclass(frozen=True)
class Checked:
    """One URL as apprise reads it: `problem` (None when usable), the secret `parts` to mask
    besides the URL, and whether it goes over plain http to another host (`plain_elsewhere`)."""

    problem: str | None
    parts: tuple[str, ...] = ()
    plain_elsewhere: bool = False


def check(url: str) -> Checked:
    """Read `url` as apprise does. The problem, if any, says what is wrong and how to fix it
    without showing the URL."""
    match = _SCHEME.match(url)
    if match is None:
        return Checked(
            "is not an apprise URL (scheme://…, not shown here: it is a secret); "
            f"write a service URL such as {EXAMPLES} (the services: {SERVICES})"
        )
    scheme = match[1].lower()
    try:
        apprise, plugins = apprise_loader.load()
    except ImportError:
        return Checked(
            "needs apprise, which is not installed here: pip install 'apprise>=2.3,<3' "
            "(a dependency of snapshot-policy; reinstalling the tool brings it)"
        )
    with apprise_loader.quiet():
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    known = scheme in plugins
    if plugin is None:
        if not known:
            return Checked(
                f"{scheme}:// is not a service apprise knows; write a service URL such as "
                f"{EXAMPLES} (the services: {SERVICES})"
            )
        help_url = getattr(plugins[scheme], "setup_url", None) or SERVICES
        return Checked(
            f"apprise cannot read this {scheme}:// URL (not shown here: it is a secret): "
            f"a part is missing or malformed; see {help_url} for its form"
        )
    parts = pieces(url, plugin)
    try:
        full, private = plugin.url(privacy=False), plugin.url(privacy=True)
    except Exception:  # a plugin that cannot write its URL back: its pieces as written
        return Checked(None, parts, _plain(plugin, url))
    return Checked(
        None, tuple(dict.fromkeys((*parts_to_mask(full, private), *parts))), _plain(plugin, full)
    )


def pieces(url: str, plugin: object) -> tuple[str, ...]:
    """The pieces of `url` as written that may be a secret, decoded, of MIN_PIECE characters or
    more: the password, each query value that is not a flag, a number or one of a list (a
    token, a header), and — where they look like a token, not words — each path segment (an
    ntfy topic, a chat, a key), the fragment and the host where it is not a machine's name
    (`slack://TOKEN/…`, `ntfys://TOPIC`).

    A piece is masked wherever it appears, state files included, where a name must stay as it
    is to be matched again: words (`backups`, `snapshot-policy`) would hide servers' names and
    the tool's own; apprise's words, which quote a topic, never leave (`apprise_send`)."""
    _, _, rest = url.partition("://")
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    userinfo, _, hostport = netloc.rpartition("@")
    named = [userinfo.partition(":")[2]]
    for key, _, value in (pair.partition("=") for pair in query.split("&")):
        if _arg_type(plugin, unquote(key)) not in _NOT_SECRET:
            named.append(value)
    shaped = [*path.split("/"), fragment]
    host = hostport[1:].partition("]")[0] if hostport.startswith("[") else hostport.split(":")[0]
    if not _is_host(host, plugin):
        shaped += [hostport, host]
    found = named + [piece for piece in shaped if _token_like(unquote(piece))]
    decoded = [unquote(piece) for piece in found] + found
    return tuple(dict.fromkeys(p for p in decoded if len(p) >= MIN_PIECE))


def _token_like(piece: str) -> bool:
    """A digit among letters, or 20 characters or more: what a token, key or random topic looks
    like, and a word or a name of words does not."""
    return len(piece) >= 20 or (any(c.isdigit() for c in piece) and any(c.isalpha() for c in piece))


def _is_host(host: str, plugin: object) -> bool:
    """True when `host` names a machine (an address, localhost, a name with a dot) for a service
    whose URL holds one; else it is a token, a topic or a chat, and a secret."""
    try:
        templates = " ".join(getattr(type(plugin), "templates", ()) or ())
    except TypeError:
        templates = ""
    if "{host}" not in templates:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host.lower() == "localhost" or "." in host.strip(".")
    return True


def _arg_type(plugin: object, key: str) -> str | None:
    """The type apprise gives the query argument `key` (`bool`, `int`, `choice:string`, …), its
    alias followed; None for one it does not list (a header, a custom field: may be a key)."""
    try:
        args = getattr(type(plugin), "template_args", {}) or {}
        tokens = getattr(type(plugin), "template_tokens", {}) or {}
        spec = args.get(key.lower()) or {}
        if "alias_of" in spec:
            spec = tokens.get(spec["alias_of"]) or args.get(spec["alias_of"]) or {}
        kind = spec.get("type")
    except (AttributeError, TypeError):
        return None
    return kind if isinstance(kind, str) else None


def parts_to_mask(full: str, private: str) -> tuple[str, ...]:
    """The pieces of `full` (a URL as apprise writes it) that apprise masks in `private` (the
    same URL in privacy mode), decoded: the tokens, passwords and keys it holds."""
    shown, hidden = _PIECES.split(full), _PIECES.split(private)
    parts: list[str] = []
    matcher = difflib.SequenceMatcher(None, shown, hidden, autojunk=False)
    for tag, start, end, _, _ in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            parts += [unquote(piece) for piece in shown[start:end] if piece]
    return tuple(dict.fromkeys(parts))


def _plain(plugin: object, full: str) -> bool:
    """True when the plugin has a secure twin (json and jsons, ntfy and ntfys, …) and this URL,
    as apprise will send it, is the plain one, to a host other than this machine. A plugin
    whose attributes are not what this expects is taken as the service deciding: no error, and
    never a traceback."""
    try:
        return _plain_elsewhere(plugin, full)
    except Exception:  # a plugin's quirk (kodi:// kept an int in `protocol`) must not end a load
        return False


def _plain_elsewhere(plugin: object, full: str) -> bool:
    # The class's schemes: an instance may reuse the names (Kodi's `protocol` is a version).
    insecure = _schemes(getattr(type(plugin), "protocol", None))
    if not insecure or not _schemes(getattr(type(plugin), "secure_protocol", None)):
        return False  # one scheme only: the service decides (Slack, Telegram, Discord: https)
    scheme = full.split("://", 1)[0].lower()
    host = getattr(plugin, "host", None) or ""
    if scheme not in insecure or not host:
        return False
    try:
        port = urlsplit(full).port
    except ValueError:
        port = None
    return not transport.is_loopback(f"http://{_bracketed(host)}{f':{port}' if port else ''}/")


def _schemes(value: object) -> set[str]:
    """A plugin's scheme attribute as a set: a str or a tuple of them; anything else, none."""
    if isinstance(value, str):
        return {value.lower()}
    if isinstance(value, (tuple, list)) and all(isinstance(v, str) for v in value):
        return {v.lower() for v in value}
    return set()


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host
