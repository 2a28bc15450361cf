"""Building the MIME message of one mail, with every header value checked.

Headers are set through the standard library's :class:`email.message.EmailMessage` with the
SMTP policy, which refuses a CR or LF in any header value; addresses are also parsed as one
bare ``addr-spec`` each, so a value like ``a@example.com, b@evil.test`` or one carrying a
display name cannot add a recipient. The bodies are plain text with an optional HTML
alternative.
"""

from __future__ import annotations

import email.policy
import email.utils
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Final

from satchel.errors import InvalidInput

MAX_SUBJECT: Final = 200
_FORBIDDEN: Final = frozenset("\r\n\x00")


@dataclass(frozen=True, slots=True, repr=False)
class Rendered:
    """A mail's subject and bodies, as the templates produced them."""

    subject: str
    text: str
    html: str | None = None

    def __repr__(self) -> str:
        return f"Rendered(subject={self.subject!r})"


def single_address(value: str) -> Address:
    """``value`` as one bare address (``local@domain``), or :class:`InvalidInput`."""
    if not isinstance(value, str) or not value or any(ch in _FORBIDDEN for ch in value):
        raise InvalidInput("The address must be one plain e-mail address.")
    if any(ch in value for ch in '<>,;"() \t'):
        raise InvalidInput("The address must be one plain e-mail address.")
    try:
        address = Address(addr_spec=value)
    except (ValueError, IndexError, TypeError):
        raise InvalidInput("The address must be one plain e-mail address.") from None
    if not address.username or not address.domain or address.addr_spec != value:
        raise InvalidInput("The address must be one plain e-mail address.")
    return address


def sender_address(value: str) -> Address:
    """The From address: ``addr@domain`` or ``Display Name <addr@domain>``."""
    if not isinstance(value, str) or any(ch in _FORBIDDEN for ch in value):
        raise InvalidInput("The sender must be an e-mail address.")
    name, addr = email.utils.parseaddr(value)
    if not addr:
        raise InvalidInput("The sender must be an e-mail address.")
    bare = single_address(addr)
    return Address(display_name=name, username=bare.username, domain=bare.domain)


def one_line(text: str, limit: int = MAX_SUBJECT) -> str:
    """``text`` on one line (runs of whitespace, newlines included, become one space)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def build_message(*, sender: str, to: str, rendered: Rendered) -> EmailMessage:
    """The MIME message of ``rendered`` from ``sender`` to ``to``.

    Raises :class:`InvalidInput` for an address that is not exactly one plain address.
    """
    from_address = sender_address(sender)
    to_address = single_address(to)
    message = EmailMessage(policy=email.policy.SMTP)
    message["From"] = from_address
    message["To"] = to_address
    message["Subject"] = one_line(rendered.subject)
    message["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = email.utils.make_msgid(domain=from_address.domain)
    # RFC 3834: automatic replies (vacation notices) must not answer this message.
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    if rendered.html is not None:
        message.add_alternative(rendered.html, subtype="html")
    return message


def masked(address: str) -> str:
    """An address as logs show it: ``a***@example.com`` (enough to tell mails apart)."""
    local, sep, domain = address.rpartition("@")
    if not sep:
        return "***"
    return f"{local[:1]}***@{domain}"
