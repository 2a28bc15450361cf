"""E-mail addresses of accounts: one plain ``local@domain``, checked before anything uses it.

Only what mail systems agree on is accepted: an ASCII dot-atom local part and a domain of
letters, digits and hyphens (an internationalised domain is converted to its ``xn--`` form).
No display names, quotes, comments, whitespace, commas or control characters, so an
address can never carry a second recipient or a header line into a mail.
"""

from __future__ import annotations

import re
from typing import Final

from satchel.errors import InvalidInput

MAX_ADDRESS: Final = 254
MAX_LOCAL: Final = 64
_LOCAL: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_LABEL: Final = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def normalize_email(value: object) -> str:
    """``value`` as a stored address (surrounding spaces gone, domain lower-cased).

    Raises :class:`InvalidInput` for anything but one plain address.
    """
    if not isinstance(value, str):
        raise InvalidInput("The e-mail address must be a string.")
    if len(value) > 4 * MAX_ADDRESS:
        raise InvalidInput("The e-mail address is too long.")
    text = value.strip(" ")
    local, sep, domain = text.rpartition("@")
    if not sep or not local or not domain or not _LOCAL.fullmatch(local):
        raise InvalidInput("Enter one e-mail address, like name@example.com.")
    if len(local) > MAX_LOCAL:
        raise InvalidInput("The part before @ is too long.")
    try:
        ascii_domain = domain.encode("idna").decode("ascii").lower()
    except (UnicodeError, ValueError):
        raise InvalidInput("The domain of the e-mail address is not valid.") from None
    labels = ascii_domain.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidInput("The domain of the e-mail address is not valid.")
    if labels[-1].isdigit():
        raise InvalidInput("The domain of the e-mail address is not valid.")
    address = f"{local}@{ascii_domain}"
    if len(address) > MAX_ADDRESS:
        raise InvalidInput("The e-mail address is too long.")
    return address
