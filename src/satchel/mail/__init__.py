"""Outgoing mail: URLs (:mod:`.urls`), senders (:mod:`.senders`), templates
(:mod:`.templates`), message building (:mod:`.message`) and the background outbox
(:mod:`.outbox`).

SMTP needs the ``mail`` extra (``aiosmtplib``); the templates need Jinja2 (in ``mail`` and
``server``). Nothing here is imported by the core until an application configures mail.
"""

from __future__ import annotations

from satchel.mail.message import Rendered, build_message, masked, single_address
from satchel.mail.outbox import MailOutbox
from satchel.mail.senders import (
    ConsoleSender,
    FileSender,
    NoSender,
    Sender,
    SMTPSender,
    open_sender,
)
from satchel.mail.templates import KINDS, MailTemplates
from satchel.mail.urls import MailURL, parse_mail_url

__all__ = [
    "KINDS",
    "ConsoleSender",
    "FileSender",
    "MailOutbox",
    "MailTemplates",
    "MailURL",
    "NoSender",
    "Rendered",
    "SMTPSender",
    "Sender",
    "build_message",
    "masked",
    "open_sender",
    "parse_mail_url",
    "single_address",
]
