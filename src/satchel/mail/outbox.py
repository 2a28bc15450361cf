"""The outbox: a mail is handed over in a few microseconds and sent in the background.

:meth:`MailOutbox.send` only queues the message (a :class:`~satchel.accounts.jobs.JobQueue`):
the request that caused it never waits for the mail server, and never fails because of it.
A worker renders the templates, builds the message and hands it to the sender; a failure is
retried with a growing delay, then logged as failed and counted (``outbox.stats``). Logs
name the kind of mail and a masked address, never a link, a code or the body.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from email.message import EmailMessage
from typing import Any

from satchel.accounts.jobs import JobQueue, JobStats, PermanentFailure
from satchel.errors import InvalidInput
from satchel.mail.message import build_message, masked, sender_address, single_address
from satchel.mail.senders import Sender
from satchel.mail.templates import MailTemplates, TemplateFailed

logger = logging.getLogger("satchel.mail")


class MailOutbox:
    """Queues mails for ``sender``; see the module docstring."""

    def __init__(
        self,
        sender: Sender,
        *,
        from_address: str,
        templates: MailTemplates | None = None,
        base_context: Mapping[str, Any] | None = None,
        max_size: int = 1000,
        attempts: int = 4,
        retry_delay: float = 2.0,
        max_delay: float = 60.0,
        workers: int = 2,
    ) -> None:
        sender_address(from_address)  # a bad From fails at start-up, not per message
        self.sender = sender
        self.from_address = from_address
        self.templates = templates or MailTemplates()
        self.base_context = dict(base_context or {})
        self.queue = JobQueue(
            "mail",
            max_size=max_size,
            workers=workers,
            attempts=attempts,
            retry_delay=retry_delay,
            max_delay=max_delay,
        )

    def __repr__(self) -> str:
        return f"MailOutbox({self.sender!r})"

    @property
    def stats(self) -> JobStats:
        """Mails queued, sent (``done``), retried, failed and dropped."""
        return self.queue.stats

    def send(self, kind: str, to: str, context: Mapping[str, Any]) -> bool:
        """Queue mail ``kind`` to ``to``; False (logged, counted) when it cannot be queued."""
        try:
            single_address(to)
        except InvalidInput:
            self.queue.stats.failed += 1
            logger.error("mail %s not sent: the address is not one plain address", kind)
            return False
        values = {**self.base_context, **context}
        built: list[EmailMessage] = []

        async def deliver() -> None:
            if not built:
                built.append(self._build(kind, to, values))
            await self.sender.send(built[0])

        return self.queue.submit(deliver, f"mail {kind} to {masked(to)}")

    def _build(self, kind: str, to: str, values: Mapping[str, Any]) -> EmailMessage:
        try:
            rendered = self.templates.render(kind, values)
        except TemplateFailed as exc:
            raise PermanentFailure(f"template {exc} is broken") from None
        try:
            return build_message(sender=self.from_address, to=to, rendered=rendered)
        except (InvalidInput, ValueError):
            raise PermanentFailure(f"message {kind} could not be built") from None

    def start(self) -> None:
        """Start the workers (the first :meth:`send` does it too)."""
        self.queue.start()

    async def join(self) -> None:
        """Wait until every queued mail is sent or given up."""
        await self.queue.join()

    async def close(self, grace: float = 5.0) -> None:
        """Send what is queued for up to ``grace`` seconds, then stop."""
        await self.queue.close(grace)
