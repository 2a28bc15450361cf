"""Settings -> the second-factor service of a configured :class:`~satchel.Auth`."""

from __future__ import annotations

from satchel.accounts.mfa.policy import MfaMode
from satchel.accounts.mfa.service import MfaConfig, MfaService
from satchel.accounts.throttle import LoginThrottle, ThrottlePolicy
from satchel.clock import Clock
from satchel.config.settings import Settings
from satchel.stores.base import Stores
from satchel.stores.deadline import with_deadline
from satchel.stores.factors import factor_store_for


def mfa_service(settings: Settings, stores: Stores, clock: Clock) -> MfaService:
    """Second factors, passkeys and step-up (``SATCHEL_MFA*``, ``SATCHEL_FRESH_AGE``,
    ``SATCHEL_WEBAUTHN_*``), kept beside satchel's keys (its own store even when the
    accounts live in an application's user table)."""
    config = MfaConfig(
        mode=MfaMode(settings.mfa),
        fresh_age=settings.fresh_age,
        token_ttl=float(settings.mfa_token_ttl),
        issuer=settings.totp_issuer or settings.issuer,
        rp_id=settings.webauthn_rp_id,
        rp_name=settings.webauthn_rp_name,
        origins=settings.passkey_origins,
    )
    # Failed codes are counted like failed passwords, in Redis when one is configured.
    policy = ThrottlePolicy(
        account_limit=settings.mfa_attempts,
        account_window=float(settings.mfa_attempt_window),
        ip_limit=settings.login_ip_limit,
        ip_window=float(settings.login_ip_window),
    )
    throttle = LoginThrottle.from_url(
        settings.redis_url, policy, clock=clock, prefix=f"{settings.key_prefix}:mfa"
    )
    return MfaService(
        factor_store_for(stores.keys),
        with_deadline(stores, settings.store_timeout).keys,
        config=config,
        throttle=throttle,
        clock=clock,
        timeout=settings.store_timeout,
    )
