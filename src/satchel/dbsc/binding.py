"""DBSC for satchel's server-side sessions: offering it at sign-in, registration, refresh and
the per-request check of a bound session (draft dbsc-1; ``docs/dbsc.md``).

- A cookie sign-in offers DBSC with ``Secure-Session-Registration``: the algorithms, the
  registration path and a challenge. Challenges are random 256-bit values kept as one-time
  records (only their keyed hash is stored), tied to one session, and consumed atomically:
  each answers one proof, before it expires, in any number of processes.
- Registration verifies the self-signed proof, consumes its challenge and keeps the public
  key (JWK, RFC 7638 thumbprint, algorithm, time) in the session record's ``data``. The
  session is then *bound*: its session cookie alone no longer authenticates anything; each
  request also needs the short-lived bound cookie (:mod:`satchel.dbsc.cookie`).
- Refresh renews the bound cookie only for a proof signed by the registered key over a
  challenge it has just been given (403 + ``Secure-Session-Challenge`` otherwise). A proof
  signed by another key is the theft signal: audited, and the session ends unless
  configured otherwise.

Sessions never registered (browsers without DBSC) are not touched: no bound cookie is ever
asked of them.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from typing import Any, Final

from satchel.audit import AuditEvent, AuditLog
from satchel.clock import Clock
from satchel.dbsc.cookie import BoundCookie
from satchel.dbsc.errors import (
    DeviceBindingRequired,
    InvalidProof,
    NotRegistered,
    ProofRequired,
    WrongKey,
)
from satchel.dbsc.headers import (
    SESSION_ID,
    challenge_header,
    read_proof,
    read_session_id,
    registration_header,
    skipped_reasons,
)
from satchel.dbsc.proof import DeviceKey, Proof, verify_refresh, verify_registration
from satchel.dbsc.record import DATA_KEY
from satchel.errors import (
    InvalidCredential,
    InvalidInput,
    NotSupported,
    SatchelError,
    StoreUnavailable,
)
from satchel.identity import Identity
from satchel.jose import b64
from satchel.revocation.base import RevocationEvent, RevocationKind
from satchel.stores.base import SessionDataStore, SessionRecord
from satchel.stores.onetime import OneTimeRecord, OneTimeTokenStore
from satchel.strategies.session import SessionStrategy
from satchel.strategies.session_policy import session_valid
from satchel.transports.base import HeaderPairs, RawHeaders, header_values

logger = logging.getLogger("satchel.dbsc")

REGISTER_KIND: Final = "dbsc_register"
REFRESH_KIND: Final = "dbsc_refresh"
NO_STORE: Final = ("cache-control", "no-store")


@dataclass(frozen=True, slots=True)
class DbscConfig:
    """What :class:`DeviceBinding` offers: endpoints, lifetimes and the theft response."""

    register_path: str = "/auth/dbsc/register"
    refresh_path: str = "/auth/dbsc/refresh"
    challenge_ttl: float = 300.0
    end_on_wrong_key: bool = True
    #: Paths the browser need not hold requests for while it refreshes (public assets).
    excluded_paths: tuple[str, ...] = ("/static",)


class DeviceBinding:
    """DBSC for the sessions of one :class:`~satchel.strategies.session.SessionStrategy`.

    ``tokens`` keeps the challenges, ``key`` (32 bytes or more, shared by every process
    through the key store) keys their stored hashes and the bound cookie's MAC.
    ``rejected`` counts requests of bound sessions refused for a missing or stale bound
    cookie, by reason (``/metrics``).
    """

    def __init__(
        self,
        config: DbscConfig,
        *,
        strategy: SessionStrategy,
        tokens: OneTimeTokenStore,
        cookie: BoundCookie,
        key: bytes,
        audit: AuditLog,
        clock: Clock,
    ) -> None:
        self.config = config
        self.strategy = strategy
        self.tokens = tokens
        self.cookie = cookie
        self.audit = audit
        self.clock = clock
        self._hash_key = hashlib.sha256(b"satchel-dbsc-challenge\0" + key).digest()
        self.rejected: dict[str, int] = {"missing": 0, "skipped": 0}

    def __repr__(self) -> str:
        return f"DeviceBinding(cookie={self.cookie!r}, refresh={self.config.refresh_path!r})"

    # --- challenges -------------------------------------------------------------------------

    def _hash(self, kind: str, challenge: str) -> bytes:
        return hmac.new(self._hash_key, f"{kind}\0{challenge}".encode(), hashlib.sha256).digest()

    async def _challenge(self, kind: str, identity: Identity) -> str:
        challenge = b64.encode(secrets.token_bytes(32))
        now = self.clock()
        record = OneTimeRecord(
            kind=kind,
            token_hash=self._hash(kind, challenge),
            created_at=now,
            expires_at=now + self.config.challenge_ttl,
            user_id=identity.user_id,
            data={"sid": identity.session_id},
        )
        # Any store failure is an outage (503), never a 500: the strategy's guard.
        await self.strategy._io(self.tokens.put(record))
        return challenge

    async def _consume(self, kind: str, challenge: str, session_id: str) -> bool:
        """Use up ``challenge``; True when it was live and issued to ``session_id``."""
        hashed = self._hash(kind, challenge)
        record = await self.strategy._io(self.tokens.consume(kind, hashed, self.clock()))
        return record is not None and record.data.get("sid") == session_id

    # --- sign-in ----------------------------------------------------------------------------

    async def offer(self, identity: Identity) -> HeaderPairs:
        """``Secure-Session-Registration`` for a new cookie session (with its challenge)."""
        if identity.session_id is None:
            return []
        try:
            challenge = await self._challenge(REGISTER_KIND, identity)
        except StoreUnavailable:
            # The sign-in itself succeeded; the session simply stays unbound, as for a
            # browser without DBSC.
            logger.warning("could not store a DBSC challenge; sign-in without the offer")
            return []
        return [registration_header(self.config.register_path, challenge)]

    # --- registration -----------------------------------------------------------------------

    async def register(
        self, identity: Identity, headers: RawHeaders, origin: str | None
    ) -> tuple[dict[str, Any], HeaderPairs]:
        """Bind the caller's session to the key of its registration proof.

        Returns the session instructions and the headers (the bound cookie). Raises
        :class:`InvalidProof` for a missing, malformed or unsigned proof and for a challenge
        that is unknown, used, expired or another session's; :class:`NotRegistered` when
        the session is already bound (a session's key is never replaced).
        """
        sid = _sid(identity)
        token = read_proof(headers)
        if token is None:
            raise InvalidProof("Registration needs a Secure-Session-Response proof.")
        try:
            proof = verify_registration(token)
            record = await self._live_record(identity)
            if DATA_KEY in record.data:
                raise NotRegistered("This session is already bound to a device key.")
            if not await self._consume(REGISTER_KIND, proof.jti, sid):
                raise InvalidProof("The challenge is unknown, used or expired.")
        except StoreUnavailable:
            raise  # an outage, not a failed registration
        except SatchelError as exc:
            await self._failure("dbsc.register_failed", identity, exc)
            raise
        key = _key_of(proof)
        now = self.clock()
        data = {**record.data, DATA_KEY: {**key.to_data(), "at": now}}
        store = self.strategy.store
        if not isinstance(store, SessionDataStore):
            raise NotSupported("This session store cannot keep a device key.")
        if not await self.strategy._io(store.update_data(sid, data)):
            raise InvalidCredential("Unknown or ended session.")
        await self._changed(record)
        await self.audit.emit(
            AuditEvent(
                "dbsc.registered",
                user_id=identity.user_id,
                session=sid,
                extra={"alg": key.alg, "jkt": key.thumbprint},
            )
        )
        return self.instructions(sid, origin), [
            self.cookie.set_cookie(sid, key.thumbprint, now),
            NO_STORE,
        ]

    async def _live_record(self, identity: Identity) -> SessionRecord:
        sid = _sid(identity)
        record = await self.strategy._io(self.strategy.store.get(sid))
        if record is None or record.user_id != identity.user_id:
            raise InvalidCredential("Unknown or ended session.")
        if not session_valid(record, self.clock()):
            raise InvalidCredential("Unknown or ended session.")
        return record

    async def _changed(self, record: SessionRecord) -> None:
        """Make every process read the session again: its cached identity lacks the key.

        For the session strategy a session event only drops cached entries (the store is
        the truth), so the one published here ends nothing. A failed publish leaves other
        processes trusting their cached entry until the cache's time-to-live.
        """
        strategy = self.strategy
        strategy.cache.drop_session(record.id)
        if strategy.bus is None:
            return
        event = RevocationEvent(RevocationKind.SESSION, record.id, until=record.absolute_expires_at)
        try:
            await strategy._publish(event)
        except SatchelError:
            logger.warning("could not announce a DBSC binding; caches expire it")

    # --- refresh ----------------------------------------------------------------------------

    async def refresh(
        self, identity: Identity, headers: RawHeaders, origin: str | None
    ) -> tuple[dict[str, Any], HeaderPairs]:
        """Renew the bound cookie of the caller's session for a fresh proof of its key.

        Without a proof, or with one over a stale challenge, raises :class:`ProofRequired`
        (403 and a new challenge). A proof signed by another key raises :class:`WrongKey`
        and, with ``end_on_wrong_key``, ends the session first.
        """
        sid = _sid(identity)
        try:
            named = read_session_id(headers)
        except InvalidInput as exc:
            await self._failure("dbsc.refresh_failed", identity, exc)
            raise
        if named is not None and named != sid:
            other = InvalidInput("Sec-Secure-Session-Id names another session.")
            await self._failure("dbsc.refresh_failed", identity, other)
            raise other
        record = await self._live_record(identity)
        key = DeviceKey.from_data(record.data.get(DATA_KEY))
        if key is None:
            raise NotRegistered("This session has no device key to refresh.")
        token = read_proof(headers)
        if token is None:
            raise await self._ask_proof(identity)
        try:
            proof = verify_refresh(token, key)
        except WrongKey as exc:
            await self._wrong_key(identity, key)
            raise exc
        except InvalidProof as exc:
            await self._failure("dbsc.refresh_failed", identity, exc)
            raise
        if not await self._consume(REFRESH_KIND, proof.jti, sid):
            stale = InvalidProof("The challenge is unknown, used or expired.")
            await self._failure("dbsc.refresh_failed", identity, stale)
            raise await self._ask_proof(identity, "The challenge is unknown, used or expired.")
        await self.audit.emit(AuditEvent("dbsc.refreshed", user_id=identity.user_id, session=sid))
        return self.instructions(sid, origin), [
            self.cookie.set_cookie(sid, key.thumbprint, self.clock()),
            NO_STORE,
        ]

    async def _ask_proof(self, identity: Identity, detail: str | None = None) -> ProofRequired:
        challenge = await self._challenge(REFRESH_KIND, identity)
        return ProofRequired(challenge_header(challenge, _sid(identity)), detail)

    async def _wrong_key(self, identity: Identity, key: DeviceKey) -> None:
        sid = _sid(identity)
        ended = self.config.end_on_wrong_key
        await self.audit.emit(
            AuditEvent(
                "dbsc.wrong_key",
                user_id=identity.user_id,
                session=sid,
                reason="session_ended" if ended else "refused",
                extra={"jkt": key.thumbprint},
            )
        )
        if ended and await self.strategy.revoke_session(sid, user_id=identity.user_id):
            await self.audit.emit(
                AuditEvent("revoke", user_id=identity.user_id, session=sid, reason="dbsc_theft")
            )

    async def _failure(self, name: str, identity: Identity, exc: SatchelError) -> None:
        await self.audit.emit(
            AuditEvent(name, user_id=identity.user_id, session=identity.session_id, reason=exc.code)
        )

    # --- the session instructions -----------------------------------------------------------

    def instructions(self, session_id: str, origin: str | None) -> dict[str, Any]:
        """The draft's JSON session instructions: the whole origin, minus public assets,
        needs the bound cookie; refreshes go to ``refresh_path``."""
        scope: dict[str, Any] = {"include_site": False}
        if origin is not None:
            scope["origin"] = origin
        scope["scope_specification"] = [
            {"type": "exclude", "domain": "*", "path": path} for path in self.config.excluded_paths
        ]
        return {
            "session_identifier": session_id,
            "refresh_url": self.config.refresh_path,
            "scope": scope,
            "credentials": [
                {"type": "cookie", "name": self.cookie.name, "attributes": self.cookie.attributes}
            ],
            "allowed_refresh_initiators": [],
        }

    # --- every request of a bound session ---------------------------------------------------

    def require(self, identity: Identity, headers: RawHeaders) -> None:
        """Refuse a bound session's request without its live bound cookie (no I/O)."""
        jkt, sid = identity.device_key, identity.session_id
        if jkt is None or sid is None:
            return
        if self.cookie.valid(headers, sid, jkt, self.clock()):
            return
        if not header_values(headers, SESSION_ID):  # not the browser's own refresh call
            self.rejected["skipped" if skipped_reasons(headers) else "missing"] += 1
        raise DeviceBindingRequired(
            "This session is bound to a device: the browser must refresh its bound cookie."
        )


def _sid(identity: Identity) -> str:
    if identity.session_id is None:
        raise InvalidCredential("Unknown or ended session.")
    return identity.session_id


def _key_of(proof: Proof) -> DeviceKey:
    assert proof.key is not None  # verify_registration always sets it
    return proof.key
