"""Mail templates: Jinja2, one subject, one plain-text and one HTML template per kind.

A kind ``K`` is rendered from ``K.subject.txt``, ``K.txt`` and ``K.html`` (optional). The
bundled templates live in ``satchel/mail/templates/``; an application overrides any of them
by putting a file of the same name in its own folder (``SATCHEL_MAIL_TEMPLATES``), which is
searched first. HTML is autoescaped, text is not (it is never interpreted), and an
undefined variable is an error rather than an empty string.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from satchel.errors import ConfigurationError
from satchel.mail.message import Rendered

if TYPE_CHECKING:
    import jinja2

BUNDLED: Final = Path(__file__).resolve().parent / "templates"

#: Every kind of mail satchel sends, with the variables its templates get (besides
#: ``site_name`` and ``public_url``, which every template gets).
KINDS: Final[Mapping[str, tuple[str, ...]]] = {
    "verify_email": ("username", "link", "expires_in"),
    "already_registered": ("username", "signin_link", "reset_link"),
    "password_reset": ("username", "link", "expires_in"),
    "password_changed": ("username", "reset_link"),
    "signin_link": ("username", "link", "code", "expires_in"),
    "email_change_confirm": ("username", "link", "new_email", "expires_in"),
    "email_change_notice": ("username", "new_email"),
    "address_in_use": ("username",),
}


class TemplateFailed(Exception):
    """A template of a mail is missing or broken (names the kind, never the context)."""


class MailTemplates:
    """Renders the mails; ``override`` is a folder whose templates replace the bundled ones."""

    def __init__(self, override: str | Path | None = None) -> None:
        try:
            import jinja2
        except ImportError as exc:  # an optional dependency (the mail and server extras)
            raise ConfigurationError(
                "Mail templates need an optional dependency: pip install 'satchel[mail]'."
            ) from exc
        loaders: list[jinja2.BaseLoader] = []
        if override is not None:
            folder = Path(override)
            if not folder.is_dir():
                raise ConfigurationError("SATCHEL_MAIL_TEMPLATES must name a folder.")
            loaders.append(jinja2.FileSystemLoader(folder))
        loaders.append(jinja2.FileSystemLoader(BUNDLED))
        self.override = None if override is None else str(override)
        self._env: jinja2.Environment = jinja2.Environment(
            loader=jinja2.ChoiceLoader(loaders),
            autoescape=jinja2.select_autoescape(
                enabled_extensions=("html",), default_for_string=False, default=False
            ),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )

    def __repr__(self) -> str:
        return f"MailTemplates(override={self.override!r})"

    def render(self, kind: str, context: Mapping[str, Any]) -> Rendered:
        """Subject and bodies of ``kind``; :class:`TemplateFailed` when one is broken."""
        import jinja2

        if kind not in KINDS:
            raise ConfigurationError(f"No mail template kind {kind!r}.")
        try:
            subject = self._env.get_template(f"{kind}.subject.txt").render(context)
            text = self._env.get_template(f"{kind}.txt").render(context)
            try:
                html_template = self._env.get_template(f"{kind}.html")
            except jinja2.TemplateNotFound:
                html = None
            else:
                html = html_template.render(context)
        except jinja2.TemplateError as exc:
            raise TemplateFailed(f"{kind}: {type(exc).__name__}") from exc
        return Rendered(subject=subject, text=text, html=html)
