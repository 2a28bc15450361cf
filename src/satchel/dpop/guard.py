"""DPoP checks with their I/O: the ``jti`` replay cache in the store, nonces, audit events.

One :class:`DPoPGuard` per :class:`~satchel.Auth` (``auth.dpop``). The replay cache is the
store's one-time token table (:meth:`~satchel.stores.onetime.OneTimeTokenStore.add`, an
atomic insert-if-absent): every process sharing the store refuses a proof any of them has
seen, for as long as its ``iat`` is acceptable. Expired entries are purged at most every
:data:`PURGE_INTERVAL` seconds by the request that finds one due (Redis expires its own), so
the cache never outgrows the proofs of the last ``max_age`` seconds by much, whichever
backend keeps it. Each refusal emits a ``dpop.failure`` audit event (counted as
``satchel_dpop_failures_total{reason}``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Final

from satchel.audit import AuditEvent, AuditLog
from satchel.clock import Clock, system_clock
from satchel.dpop.binding import MODES, DPoPSchemeError, Mode, scheme_refusal
from satchel.dpop.nonce import NonceKey
from satchel.dpop.proof import DPoPProofError, Proof, UseDPoPNonce, verify_proof
from satchel.errors import ConfigurationError
from satchel.identity import Identity
from satchel.stores.onetime import OneTimeRecord, OneTimeTokenStore

#: One-time record kind of a seen proof.
REPLAY_KIND: Final = "dpop_jti"
#: Seconds between purges of expired replay-cache entries.
PURGE_INTERVAL: Final = 60.0

logger = logging.getLogger("satchel.dpop")


class DPoPGuard:
    """Verifies proofs for the token endpoint and for resource requests.

    ``mode`` is ``SATCHEL_DPOP``: ``off`` (no guard is built), ``allowed`` or ``required``.
    ``max_age`` and ``future_skew`` bound a proof's ``iat``; ``nonces`` turns on server
    nonces; ``public_url`` is what ``htu`` is compared against (see
    :func:`satchel.integrations.dpop.request_url`).
    """

    def __init__(
        self,
        replay: OneTimeTokenStore,
        *,
        mode: Mode = "allowed",
        audit: AuditLog | None = None,
        clock: Clock = system_clock,
        nonces: NonceKey | None = None,
        public_url: str | None = None,
        max_age: float = 60.0,
        future_skew: float = 5.0,
    ) -> None:
        if mode not in MODES:
            raise ConfigurationError("dpop mode must be off, allowed or required.")
        if not 1 <= max_age <= 600 or not 0 <= future_skew <= 60:
            raise ConfigurationError("DPoP iat window: max_age 1-600 s, future_skew 0-60 s.")
        self.replay = replay
        self.mode: Mode = mode
        self.audit = audit or AuditLog()
        self.clock = clock
        self.nonces = nonces
        self.public_url = public_url
        self.max_age = float(max_age)
        self.future_skew = float(future_skew)
        self._purge_at = clock() + PURGE_INTERVAL

    def __repr__(self) -> str:
        return f"DPoPGuard(mode={self.mode!r}, nonces={self.nonces is not None})"

    async def token_request(self, proofs: Sequence[str], method: str, url: str) -> str | None:
        """The thumbprint to bind the issued tokens to, or None for a Bearer answer.

        ``proofs`` are the request's ``DPoP`` header values. Raises
        :class:`DPoPProofError` (the token endpoint answers 400 with its code).
        """
        if self.mode == "off":
            return None
        if not proofs and self.mode == "allowed":
            return None
        try:
            return (await self._verified(proofs, method, url, None)).jkt
        except DPoPProofError as exc:
            await self._failed(exc, None, exc.reason)
            raise

    async def resource_request(
        self,
        identity: Identity,
        token: str,
        dpop_scheme: bool,
        proofs: Sequence[str],
        method: str,
        url: str,
    ) -> None:
        """Accept or refuse ``identity``'s token as presented (scheme, proof)."""
        jkt = identity.jkt
        try:
            refusal = scheme_refusal(jkt, dpop_scheme, self.mode)
            if refusal is not None:
                raise refusal
            if not dpop_scheme:
                return
            proof = await self._verified(proofs, method, url, token)
            if proof.jkt != jkt:
                raise DPoPProofError("The proof is signed by another key than the token's.", "jkt")
        except (DPoPProofError, DPoPSchemeError) as exc:
            await self._failed(exc, identity, exc.reason)
            raise

    async def _verified(
        self, proofs: Sequence[str], method: str, url: str, token: str | None
    ) -> Proof:
        if len(proofs) != 1:
            raise DPoPProofError("Send exactly one DPoP proof header.", "missing")
        now = self.clock()
        proof = verify_proof(
            proofs[0],
            method=method,
            url=url,
            now=now,
            access_token=token,
            max_age=self.max_age,
            future_skew=self.future_skew,
        )
        if self.nonces is not None and not self.nonces.valid(proof.nonce, now):
            raise UseDPoPNonce(self.nonces.issue(now))
        # Scoped by key: a jti is the client's choice, unique only among its own proofs.
        digest = hashlib.sha256(f"{proof.jkt}.{proof.jti}".encode()).digest()
        seen = OneTimeRecord(
            kind=REPLAY_KIND,
            token_hash=digest,
            created_at=now,
            # Past this instant the proof's iat is out of the window anyway.
            expires_at=max(proof.iat, now) + self.max_age + self.future_skew + 1,
        )
        if not await self.replay.add(seen, now):
            raise DPoPProofError("This DPoP proof was already used.", "replay")
        if now >= self._purge_at:
            await self._purge(now)
        return proof

    async def _purge(self, now: float) -> None:
        self._purge_at = now + PURGE_INTERVAL
        try:
            await self.replay.purge_expired(now)
        except Exception as exc:  # housekeeping: the proof was fine, retried next interval
            logger.warning("DPoP replay-cache purge failed: %s", type(exc).__name__)

    async def _failed(self, exc: Exception, identity: Identity | None, reason: str) -> None:
        if isinstance(exc, UseDPoPNonce):
            return  # the nonce handshake, not a failure
        await self.audit.emit(
            AuditEvent(
                "dpop.failure",
                user_id=identity.user_id if identity else None,
                session=identity.session_id if identity else None,
                reason=reason,
            )
        )
