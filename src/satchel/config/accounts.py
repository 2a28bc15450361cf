"""Settings -> the account flows: :func:`build_accounts` turns ``SATCHEL_*`` mail, sign-up,
lifetime and throttle settings into an :class:`~satchel.accounts.service.AccountService`
on an :class:`~satchel.Auth` built by :func:`~satchel.config.build.build_auth`.
"""

from __future__ import annotations

import logging
import secrets

from satchel.accounts.account_policy import AccountPolicy, Outbox
from satchel.accounts.mail_throttle import AccountThrottle
from satchel.accounts.service import AccountService
from satchel.accounts.throttle import LoginThrottle
from satchel.accounts.tokens import PEPPER_BYTES, PEPPER_NAME, TokenHasher
from satchel.config.build import ConfiguredAuth
from satchel.config.settings import Settings
from satchel.stores import redact_url
from satchel.stores.onetime import DeadlineOneTimeStore, OneTimeTokenStore
from satchel.stores.onetime_backends import onetime_store_for

logger = logging.getLogger("satchel.accounts")


_WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - compared, not bound


def public_url(settings: Settings) -> str:
    """The configured public URL, else the address the server listens on (``localhost``
    for a wildcard address, which no browser can open)."""
    if settings.public_url:
        return settings.public_url
    host = settings.host
    if host in _WILDCARDS:
        host = "localhost"
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{settings.port}"


def mail_url(settings: Settings) -> str:
    """``SATCHEL_MAIL_URL``, else console:// for a local store (memory, SQLite), else none://."""
    if settings.mail_url:
        return settings.mail_url
    local = settings.store.lower().startswith(("memory:", "sqlite:"))
    return "console://" if local else "none://"


def account_policy(settings: Settings) -> AccountPolicy:
    """The sign-up mode and lifetimes of ``settings``."""
    return AccountPolicy(
        public_url=public_url(settings),
        site_name=settings.issuer,
        signup=settings.signup,
        setup_ttl=settings.setup_ttl,
        invite_ttl=settings.invite_ttl,
        verify_ttl=settings.verify_ttl,
        reset_ttl=settings.reset_ttl,
        signin_ttl=settings.signin_link_ttl,
        email_change_ttl=settings.email_change_ttl,
        reset_ends_sessions=settings.reset_ends_sessions,
        email_change_ends_sessions=settings.email_change_ends_sessions,
        purge_interval=settings.purge_interval,
    )


def build_outbox(settings: Settings) -> Outbox:
    """The mail outbox of ``settings`` (sender, templates, retries, queue size)."""
    from satchel.mail import MailOutbox, MailTemplates, open_sender

    url = mail_url(settings)
    sender = open_sender(url)
    logger.info("mail goes to %s", redact_url(url))
    return MailOutbox(
        sender,
        from_address=settings.mail_from,
        templates=MailTemplates(settings.mail_templates),
        base_context={"site_name": settings.issuer},
        max_size=settings.mail_queue_size,
        attempts=settings.mail_attempts,
        retry_delay=settings.mail_retry_delay,
    )


async def build_accounts(
    auth: ConfiguredAuth,
    settings: Settings | None = None,
    *,
    outbox: Outbox | None = None,
    tokens: OneTimeTokenStore | None = None,
) -> AccountService:
    """The account flows over ``auth``'s stores; call ``start()`` and, at the end, ``close()``.

    One-time tokens live in the backend of ``auth``'s key store unless ``tokens`` is given;
    their pepper is shared by every process through the key store.
    """
    settings = settings if settings is not None else auth.settings
    if settings.public_url is None and settings.host not in ("127.0.0.1", "::1", "localhost"):
        logger.warning(
            "SATCHEL_PUBLIC_URL is not set: links in mails start with %s", public_url(settings)
        )
    store = tokens if tokens is not None else onetime_store_for(auth.stores.keys)
    bounded = DeadlineOneTimeStore(store, settings.store_timeout)
    pepper = await auth.stores.keys.set_secret_if_absent(
        PEPPER_NAME, secrets.token_bytes(PEPPER_BYTES)
    )
    base = LoginThrottle.from_url(settings.redis_url, clock=auth.clock, prefix=settings.key_prefix)
    throttle = AccountThrottle(
        base,
        request_ip=(settings.mail_ip_limit, float(settings.mail_ip_window)),
        request_address=(settings.mail_address_limit, float(settings.mail_address_window)),
        failure_ip=(settings.token_failure_limit, float(settings.token_failure_window)),
        code_address=(settings.code_attempt_limit, float(settings.signin_link_ttl)),
    )
    return AccountService(
        auth,
        tokens=bounded,
        hasher=TokenHasher(pepper),
        outbox=outbox if outbox is not None else build_outbox(settings),
        policy=account_policy(settings),
        throttle=throttle,
    )
