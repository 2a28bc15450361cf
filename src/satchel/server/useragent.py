"""Readable device names from ``User-Agent`` strings, for "my devices" lists.

Parsing uses the ``ua-parser`` package (part of the ``server`` extra) and is cached, since a
user's sessions mostly share a handful of agents. Without the package, or for an agent it
does not know, the result degrades to "Unknown browser" rather than failing: the label is
cosmetic and must never break a page.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

#: Longest agent string looked at; longer ones are cut before parsing (bounded work).
MAX_AGENT = 512

_UNKNOWN_BROWSER = "Unknown browser"
_GENERIC_DEVICES = frozenset({"", "other", "generic smartphone", "generic feature phone"})
_MOBILE_OS = frozenset({"android", "ios", "ipados", "windows phone", "kaios", "harmonyos"})


@dataclass(frozen=True, slots=True)
class Device:
    """What an agent string says about the client.

    ``browser`` and ``os`` carry a major version when known (``"Chrome 140"``, ``"Android 14"``);
    ``device`` is a hardware name (``"iPhone"``, ``"Pixel 7"``) or None; ``mobile`` is a
    best guess from the operating system and device.
    """

    browser: str
    os: str | None
    device: str | None
    mobile: bool

    @property
    def label(self) -> str:
        """One short line: ``"Firefox 131 on Ubuntu"``, ``"Safari 17 on iOS 17 (iPhone)"``."""
        text = self.browser if self.os is None else f"{self.browser} on {self.os}"
        if self.device is not None:
            text = f"{text} ({self.device})"
        return text


UNKNOWN = Device(browser=_UNKNOWN_BROWSER, os=None, device=None, mobile=False)


def describe(agent: str | None) -> Device:
    """Parse ``agent`` (may be None or empty) into a :class:`Device`; never raises."""
    if not agent:
        return UNKNOWN
    return _describe(agent[:MAX_AGENT])


@lru_cache(maxsize=512)
def _describe(agent: str) -> Device:
    try:
        import ua_parser
    except ImportError:  # the server extra is not installed; labels are cosmetic
        return UNKNOWN
    try:
        result: Any = ua_parser.parse(agent)
    except Exception:  # a parser bug on hostile input must not break a page
        return UNKNOWN
    browser = _named(result.user_agent) or _UNKNOWN_BROWSER
    os_name = _named(result.os)
    device = None
    if result.device is not None:
        family = str(result.device.family or "").strip()
        if family.lower() not in _GENERIC_DEVICES and family.lower() not in (os_name or "").lower():
            device = family
    os_family = str(getattr(result.os, "family", "") or "").lower()
    mobile = os_family in _MOBILE_OS or "mobile" in agent.lower()
    return Device(browser=browser, os=os_name, device=device, mobile=mobile)


def _named(part: Any) -> str | None:
    """``"Family major"`` of a parsed user agent or OS, None when unknown."""
    if part is None:
        return None
    family = str(part.family or "").strip()
    if not family or family.lower() == "other":
        return None
    major = str(part.major or "").strip()
    return f"{family} {major}" if major else family
