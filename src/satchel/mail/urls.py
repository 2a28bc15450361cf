"""Mail URLs: where outgoing messages go, parsed once at start-up.

- ``smtp://[user:pass@]host[:port]`` — plain SMTP (port 25); credentials only to a loopback
  host, since nothing protects them on the wire;
- ``smtp+starttls://user:pass@host[:port]`` — SMTP upgraded with STARTTLS (port 587), which
  must succeed;
- ``smtps://user:pass@host[:port]`` — SMTP inside TLS from the first byte (port 465);
- ``console://`` — each message, its link included, is written to the server's output
  (development only);
- ``file:///dir`` — one ``.eml`` file per message in ``dir`` (created mode 0700);
- ``none://`` — no mail: each message is logged as failed, without its content.

TLS always verifies the server's certificate and name; ``?cafile=/path.pem`` adds a CA
to trust (a private relay), ``?timeout=10`` bounds each connection and command.
A bad URL raises :class:`~satchel.errors.ConfigurationError` that never echoes a password.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import parse_qs, unquote, urlsplit

from satchel.errors import ConfigurationError

Scheme = Literal["smtp", "smtp+starttls", "smtps", "console", "file", "none"]
SMTP_SCHEMES: Final = ("smtp", "smtp+starttls", "smtps")
DEFAULT_PORTS: Final = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}
DEFAULT_TIMEOUT: Final = 10.0
_OPTIONS: Final = frozenset({"cafile", "timeout"})


@dataclass(frozen=True, slots=True, repr=False)
class MailURL:
    """A parsed mail URL; ``password`` never appears in ``repr``."""

    scheme: Scheme
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None
    directory: str | None = None
    cafile: str | None = None
    timeout: float = DEFAULT_TIMEOUT

    def __repr__(self) -> str:
        return f"MailURL({self.redacted()!r})"

    def redacted(self) -> str:
        """The URL as it may be shown: the password replaced by ``***``."""
        if self.scheme in SMTP_SCHEMES:
            user = f"{self.username}:***@" if self.password else ""
            user = user or (f"{self.username}@" if self.username else "")
            host = f"[{self.host}]" if self.host and ":" in self.host else self.host
            return f"{self.scheme}://{user}{host}:{self.port}"
        if self.scheme == "file":
            return f"file://{self.directory}"
        return f"{self.scheme}://"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _options(query: str) -> tuple[str | None, float]:
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=bool(query))
    except ValueError:
        raise ConfigurationError("SATCHEL_MAIL_URL: the query string is malformed.") from None
    unknown = set(params) - _OPTIONS
    if unknown:
        raise ConfigurationError(
            "SATCHEL_MAIL_URL: unknown option; only cafile= and timeout= are understood."
        )
    if any(len(values) != 1 for values in params.values()):
        raise ConfigurationError("SATCHEL_MAIL_URL: each option may be given once.")
    cafile = params["cafile"][0] if "cafile" in params else None
    if cafile is not None and not os.path.isfile(cafile):
        raise ConfigurationError("SATCHEL_MAIL_URL: cafile= names no readable file.")
    timeout = DEFAULT_TIMEOUT
    if "timeout" in params:
        try:
            timeout = float(params["timeout"][0])
        except ValueError:
            raise ConfigurationError("SATCHEL_MAIL_URL: timeout= must be seconds.") from None
        if not 0 < timeout <= 300:
            raise ConfigurationError("SATCHEL_MAIL_URL: timeout= must be within 0-300 s.")
    return cafile, timeout


def parse_mail_url(url: str) -> MailURL:
    """Parse ``url`` (see the module docstring) or raise :class:`ConfigurationError`."""
    if not isinstance(url, str) or not url or not url.isprintable():
        raise ConfigurationError("SATCHEL_MAIL_URL must be a URL such as smtp://host:25.")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("console", "none"):
        if url.lower().rstrip("/") not in (f"{scheme}:", f"{scheme}:/", f"{scheme}://"):
            raise ConfigurationError(f"SATCHEL_MAIL_URL: a {scheme} URL is just {scheme}://.")
        return MailURL(scheme)  # type: ignore[arg-type]
    if scheme == "file":
        parts = urlsplit(url)
        directory = unquote(parts.path)
        if parts.netloc or not directory.startswith("/") or parts.query or parts.fragment:
            raise ConfigurationError(
                "SATCHEL_MAIL_URL: a file URL names an absolute folder, e.g. file:///var/mail."
            )
        return MailURL("file", directory=directory.rstrip("/") or "/")
    if scheme not in SMTP_SCHEMES:
        shown = f"scheme {scheme!r}" if scheme.replace("+", "").isalnum() else "URL"
        raise ConfigurationError(
            f"SATCHEL_MAIL_URL: unsupported {shown}; expected smtp://, smtp+starttls://, "
            "smtps://, console://, file:///dir or none://."
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigurationError("SATCHEL_MAIL_URL: the host or port is malformed.") from None
    host = parts.hostname
    if not host or parts.path not in ("", "/") or parts.fragment:
        raise ConfigurationError(
            "SATCHEL_MAIL_URL: an SMTP URL is scheme://[user:pass@]host[:port]."
        )
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password is not None else None
    if password is not None and scheme == "smtp" and not _is_loopback(host):
        raise ConfigurationError(
            "SATCHEL_MAIL_URL: smtp:// would send the password in clear; use "
            "smtp+starttls:// or smtps:// (plain smtp:// takes credentials for loopback only)."
        )
    if password is not None and not username:
        raise ConfigurationError("SATCHEL_MAIL_URL: a password needs a user name.")
    cafile, timeout = _options(parts.query)
    return MailURL(
        scheme,  # type: ignore[arg-type]
        host=host,
        port=port or DEFAULT_PORTS[scheme],
        username=username,
        password=password,
        cafile=cafile,
        timeout=timeout,
    )
