"""Checking the URLs of an apprise channel (issue 21, item 12) when the policy loads, so a
wrong one is a configuration error naming its key, not a failed message at 3 a.m.

apprise is imported here, and only when a policy has an apprise channel: a policy without one,
and every command that loads no configuration, never pays for it. Its logger is kept from
the console while a URL is read: what it says about a URL may quote the URL, which is a secret.

The URLs are secrets (docs/promises.md §5, invariant 8): a message here names the key and
the scheme, never the URL. What of a URL must be masked besides the URL whole is what apprise
itself hides when it shows a URL in privacy mode (tokens, passwords, keys): `parts_to_mask`.
"""

from __future__ import annotations

import difflib
import logging
import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from snapshot_policy.core import transport

SERVICES = "https://github.com/caronc/apprise/wiki"
EXAMPLES = "ntfys://ntfy.sh/TOPIC, slack://TOKEN_A/TOKEN_B/TOKEN_C, mailtos://USER:PASSWORD@HOST"
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")
_PIECES = re.compile(r"[/?&=@:#,]")


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
        apprise, plugins = _load()
    except ImportError:
        return Checked(
            "needs apprise, which is not installed here: pip install 'apprise>=2.3,<3' "
            "(a dependency of snapshot-policy; reinstalling the tool brings it)"
        )
    with quiet():
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
    try:
        full, private = plugin.url(privacy=False), plugin.url(privacy=True)
    except Exception:  # a plugin that cannot write its URL back: mask the URL whole only
        return Checked(None)
    return Checked(None, parts_to_mask(full, private), _plain(plugin, full))


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
    as apprise will send it, is the plain one, to a host other than this machine."""
    insecure, secure = getattr(plugin, "protocol", None), getattr(plugin, "secure_protocol", None)
    if not insecure or not secure:
        return False  # one scheme only: the service decides (Slack, Telegram, Discord: https)
    schemes = {insecure} if isinstance(insecure, str) else set(insecure)
    scheme = full.split("://", 1)[0].lower()
    host = getattr(plugin, "host", None) or ""
    if scheme not in schemes or not host:
        return False
    try:
        port = urlsplit(full).port
    except ValueError:
        port = None
    return not transport.is_loopback(f"http://{_bracketed(host)}{f':{port}' if port else ''}/")


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _load() -> tuple[Any, Any]:
    """apprise and its plugins, loaded here, not at the top: only a policy with an apprise
    channel needs them (a third of a second). Some plugin imports a module Python deprecates;
    that warning is apprise's to fix, not the user's to read."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise
        from apprise.manager_plugins import NotificationManager

        plugins = NotificationManager()  # one for the process
        with quiet():
            plugins.load_modules()
    return apprise, plugins


@contextmanager
def quiet() -> Iterator[None]:
    """Keep apprise's logger from every handler for the block: its lines may quote a URL."""
    logger = logging.getLogger("apprise")
    saved = (logger.propagate, logger.level, logger.handlers[:], logger.disabled)
    logger.propagate, logger.handlers, logger.disabled = False, [], True
    try:
        yield
    finally:
        logger.propagate, level, logger.handlers, logger.disabled = saved
        logger.setLevel(level)
