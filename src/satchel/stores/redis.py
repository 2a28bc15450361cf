"""Redis store (redis.asyncio + hiredis): sessions with native expiry, plus users and keys.

Key layout (``P`` is the configurable prefix, default ``satchel``)::

    P:s:<session id>   hash    one session (fields below); PEXPIREAT = nearer expiry
    P:u:<user id>      zset    the user's session ids, score = created_at; expires no
                               earlier than the user's last session
    P:user:<user id>   string  user record, JSON
    P:users            hash    username_key -> user id (uniqueness and lookup)
    P:emails           hash    email key (NFKC + casefold) -> user id (the same, by address)
    P:keys             hash    kid -> signing key record, JSON
    P:secrets          hash    name -> secret bytes

A session is a small hash of one- or two-letter fields with times in integer milliseconds
(:mod:`satchel.stores.redis_fields`).

Every multi-key change (create with the per-user limit, delete, revoke-all, refresh rotation,
purge) is one Lua script (:mod:`satchel.stores.redis_lua`), so the session keys and the
per-user index never disagree and the limit cannot be raced past. The scripts derive session
keys from the index, which is fine on a single node, with replicas or with Sentinel. **Redis
Cluster:** use a ``redis+cluster://`` URL (:mod:`satchel.stores.redis_cluster`): its key
layout hash-tags every key by user, so each script stays within one slot while sessions
spread over the masters.
A session lookup needs only the session id. Requires Redis 7.0 or newer (PEXPIRETIME).

Sessions expire by themselves; ``purge_expired`` additionally removes sessions expired by the
caller's clock and cleans index entries left by native expiry (it walks the indexes with SCAN).
``list_all`` also uses SCAN: it is O(all sessions) and meant for administration only.

Every Redis failure surfaces as :class:`~satchel.errors.StoreUnavailable`
(:mod:`satchel.stores.redis_client`), so requests fail closed with a 503.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from satchel.errors import (
    ConfigurationError,
    NotFound,
    SessionLimitExceeded,
    UserExists,
)
from satchel.stores import codec, redis_client, redis_lua, rules
from satchel.stores.base import (
    CreateResult,
    OnExceed,
    RotateOutcome,
    SessionRecord,
    StoredKey,
    UserRecord,
)
from satchel.stores.redis_client import DEFAULT_TIMEOUT, AnyRedis, aw, glob_escape, unavailable
from satchel.stores.redis_fields import ms, session_fields, session_from_fields

_BACKEND = "redis"
#: Users per script call of :meth:`RedisStore.create_users` (a few ms of server time each).
IMPORT_BATCH = 1000


class RedisStore:
    """Sessions, users and keys in Redis; implements all three protocols.

    Use :meth:`from_url` (or :func:`satchel.stores.open_stores`) and call :meth:`check`
    once at startup.
    """

    #: Sessions carry native expiry (PEXPIREAT), so a server needs no periodic purge; the
    #: per-user index is pruned on each new session and by ``satchel sessions purge``.
    expires_by_itself: ClassVar[bool] = True

    def __init__(self, client: AnyRedis, *, prefix: str = "satchel") -> None:
        if not prefix or any(ch.isspace() for ch in prefix):
            raise ConfigurationError("The Redis key prefix must be non-empty without spaces.")
        self.client = client
        self.prefix = prefix
        self._s = f"{prefix}:s:"
        self._u = f"{prefix}:u:"
        self._user = f"{prefix}:user:"
        self._users = f"{prefix}:users"
        self._emails = f"{prefix}:emails"
        self._keys = f"{prefix}:keys"
        self._secrets = f"{prefix}:secrets"
        self._create = redis_client.register_script(client, redis_lua.CREATE)
        self._touch = redis_client.register_script(client, redis_lua.TOUCH)
        self._delete = redis_client.register_script(client, redis_lua.DELETE)
        self._delete_user = redis_client.register_script(client, redis_lua.DELETE_USER)
        self._purge_user = redis_client.register_script(client, redis_lua.PURGE_USER)
        self._rotate = redis_client.register_script(client, redis_lua.ROTATE)
        self._create_user = redis_client.register_script(client, redis_lua.CREATE_USER)
        self._update_user = redis_client.register_script(client, redis_lua.UPDATE_USER)
        self._create_users = redis_client.register_script(client, redis_lua.CREATE_USERS)

    def __repr__(self) -> str:
        return f"RedisStore(prefix={self.prefix!r})"

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "satchel",
        socket_timeout: float = DEFAULT_TIMEOUT,
        socket_connect_timeout: float = DEFAULT_TIMEOUT,
        max_connections: int | None = None,
    ) -> RedisStore:
        """A store on ``url`` with short, fail-fast timeouts (see :func:`redis_client.connect`)."""
        client = redis_client.connect(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            max_connections=max_connections,
        )
        return cls(client, prefix=prefix)

    async def check(self) -> None:
        """Ping the server and warn if its eviction policy could drop satchel keys (F13)."""
        await redis_client.check(self.client)

    # --- SessionStore ---------------------------------------------------------------------

    def _session(self, session_id: str, raw: Any) -> SessionRecord | None:
        if not raw:
            return None
        if isinstance(raw, list):  # a Lua script returns HGETALL as a flat list
            raw = dict(zip(raw[::2], raw[1::2], strict=True))
        return codec.decode_or_none("session", _BACKEND, session_from_fields, session_id, raw)

    async def create(
        self,
        record: SessionRecord,
        *,
        max_per_user: int | None = None,
        on_exceed: OnExceed = OnExceed.EVICT_OLDEST,
        now: float,
    ) -> CreateResult:
        """Persist a new session atomically with the per-user limit (one Lua script)."""
        rules.check_max_per_user(max_per_user)
        args: list[Any] = [
            self._s,
            ms(now),
            "" if max_per_user is None else str(max_per_user),
            "1" if on_exceed is OnExceed.DENY else "0",
            ms(record.created_at),
            str(min(int(ms(record.idle_expires_at)), int(ms(record.absolute_expires_at)))),
            record.id,
        ]
        for name, value in session_fields(record).items():
            args += (name, value)
        async with unavailable():
            result = await self._create(
                keys=[self._s + record.id, self._u + record.user_id], args=args
            )
        if result == -1:
            raise ValueError("session id already exists")
        if result == -2:
            raise SessionLimitExceeded()
        return CreateResult(evicted=[sid.decode() for sid in result])

    async def get(self, session_id: str) -> SessionRecord | None:
        """The session, or None (also for a corrupt record)."""
        async with unavailable():
            raw = await aw(self.client.hgetall(self._s + session_id))
        return self._session(session_id, raw)

    async def touch(self, session_id: str, *, last_seen_at: float, idle_expires_at: float) -> bool:
        """Record activity and move the expiry; never recreates a deleted session."""
        async with unavailable():
            done = await self._touch(
                keys=[self._s + session_id],
                args=[ms(last_seen_at), ms(idle_expires_at), self._u],
            )
        return bool(done)

    async def update_data(self, session_id: str, data: dict[str, Any]) -> bool:
        """Replace the session's ``data``; never recreates a deleted session."""
        script = redis_client.register_script(self.client, redis_lua.SET_DATA)  # step-ups only
        async with unavailable():
            done = await script(keys=[self._s + session_id], args=[codec.data_to_json(data)])
        return bool(done)

    async def delete(self, session_id: str) -> SessionRecord | None:
        """Remove a session and its index entry; idempotent."""
        async with unavailable():
            raw = await self._delete(keys=[self._s + session_id], args=[self._u, session_id])
        return self._session(session_id, raw)

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """Remove every session of the user except ``keep``."""
        async with unavailable():
            removed = await self._delete_user(
                keys=[self._u + user_id],
                args=[self._s, keep or "", "0" if keep is None else "1"],
            )
        return [sid.decode() for sid in removed]

    async def _load(self, ids: list[str]) -> list[SessionRecord]:
        async with unavailable():
            pipe = self.client.pipeline(transaction=False)
            for sid in ids:
                pipe.hgetall(self._s + sid)
            raws = await pipe.execute()
        return [r for sid, raw in zip(ids, raws, strict=True) if (r := self._session(sid, raw))]

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """The user's sessions, oldest first."""
        async with unavailable():
            ids = await self.client.zrange(self._u + user_id, 0, -1)
        return await self._load([sid.decode() for sid in ids])

    async def list_all(self, *, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        """Every user's sessions, newest first; scans all sessions (administration only)."""
        ids: list[str] = []
        skip = len(self._s)
        async with unavailable():
            async for key in self.client.scan_iter(
                match=glob_escape(self._s) + "*", count=1000, _type="hash"
            ):
                ids.append(key.decode()[skip:])
        records: list[SessionRecord] = []
        for start in range(0, len(ids), 500):
            records += await self._load(ids[start : start + 500])
        records.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return rules.page(records, limit=limit, offset=offset)

    async def purge_expired(self, now: float) -> int:
        """Delete sessions expired by ``now`` and prune stale index entries."""
        total = 0
        async with unavailable():
            async for key in self.client.scan_iter(
                match=glob_escape(self._u) + "*", count=1000, _type="zset"
            ):
                total += int(await self._purge_user(keys=[key], args=[self._s, ms(now)]))
        return total

    async def rotate_refresh(
        self,
        session_id: str,
        *,
        presented_hash: bytes,
        successor_hash: bytes,
        now: float,
        grace: float,
    ) -> RotateOutcome:
        """Compare-and-set of the refresh hash in one Lua script; expired is UNKNOWN."""
        async with unavailable():
            outcome = await self._rotate(
                keys=[self._s + session_id],
                args=[bytes(presented_hash), bytes(successor_hash), ms(now), ms(grace)],
            )
        return RotateOutcome(outcome.decode())

    # --- UserStore ------------------------------------------------------------------------

    def _decode_user(self, raw: bytes | None) -> UserRecord | None:
        if raw is None:
            return None
        return codec.decode_or_none("user", _BACKEND, codec.decode_user, raw)

    @staticmethod
    def _user_args(user: UserRecord) -> list[str]:
        """ARGV of the user scripts: id, username key, record and the email key if any."""
        args = [user.id, user.username_key, codec.encode_user(user)]
        if user.email is not None:
            args.append(rules.email_key(user.email))
        return args

    async def create_user(self, user: UserRecord) -> None:
        """Insert; UserExists on a duplicate username_key, id or email."""
        args = self._user_args(user)
        async with unavailable():
            done = await self._create_user(
                keys=[self._user + user.id, self._users, self._emails], args=args
            )
        if not done:
            raise UserExists()

    async def create_users(self, users: Sequence[UserRecord]) -> list[str]:
        """Insert many; returns the usernames refused (taken username, id or email).

        One Lua script per :data:`IMPORT_BATCH` users: each batch is atomic and keeps the
        username and email indexes consistent, but a failure between batches leaves the
        earlier batches written (Redis has no multi-script transaction).
        """
        tried = rules.first_of_each(users)
        groups: list[list[str]] = []
        for position in tried:
            user = users[position]
            mail = rules.opt_email_key(user.email)
            has_mail = "0" if mail is None else "1"
            record = codec.encode_user(user)
            groups.append([user.id, user.username_key, record, has_mail, mail or ""])
        inserted: set[str] = set()
        async with unavailable():
            for start in range(0, len(groups), IMPORT_BATCH):
                batch = groups[start : start + IMPORT_BATCH]
                args = [self._user, *(value for group in batch for value in group)]
                refused = await self._create_users(keys=[self._users, self._emails], args=args)
                skip = {int(n) - 1 for n in refused}
                inserted.update(g[0] for n, g in enumerate(batch) if n not in skip)
        return rules.refused(users, tried, inserted)

    async def get_user(self, user_id: str) -> UserRecord | None:
        """By id."""
        async with unavailable():
            raw = await self.client.get(self._user + user_id)
        return self._decode_user(raw)

    async def get_user_by_name(self, username_key: str) -> UserRecord | None:
        """By normalised username."""
        async with unavailable():
            # bytes: the client is created with decode_responses=False
            user_id: Any = await aw(self.client.hget(self._users, username_key))
            if user_id is None:
                return None
            raw = await self.client.get(self._user.encode() + user_id)
        return self._decode_user(raw)

    async def get_user_by_email(self, email: str) -> UserRecord | None:
        """By address, compared by its NFKC + casefold key."""
        key = rules.email_key(email)
        async with unavailable():
            user_id: Any = await aw(self.client.hget(self._emails, key))
            if user_id is None:
                return None
            raw = await self.client.get(self._user.encode() + user_id)
        return self._decode_user(raw)

    async def update_user(self, user: UserRecord) -> None:
        """Replace by id; NotFound if absent, UserExists if the new username or email is taken."""
        args = self._user_args(user)
        async with unavailable():
            result = await self._update_user(
                keys=[self._user + user.id, self._users, self._emails], args=args
            )
        if result == -1:
            raise NotFound("No such user.")
        if result == -2:
            raise UserExists()

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> list[UserRecord]:
        """Users ordered by username key."""
        async with unavailable():
            names: dict[bytes, bytes] = await aw(self.client.hgetall(self._users))
            ordered = sorted(names.items(), key=lambda kv: kv[0].decode(errors="replace"))
            page = rules.page(ordered, limit=limit, offset=offset)
            if not page:
                return []
            raws = await self.client.mget([self._user.encode() + uid for _, uid in page])
        return [u for raw in raws if (u := self._decode_user(raw)) is not None]

    # --- KeyStore -------------------------------------------------------------------------

    async def list_keys(self) -> list[StoredKey]:
        """Every key, oldest first."""
        async with unavailable():
            raws = await aw(self.client.hvals(self._keys))
        keys = codec.decode_all("key", _BACKEND, codec.decode_key, raws)
        return sorted(keys, key=lambda k: (k.created_at, k.kid))

    async def save_key(self, key: StoredKey) -> None:
        """Insert or replace by kid."""
        async with unavailable():
            await aw(self.client.hset(self._keys, key.kid, codec.encode_key(key)))

    async def get_secret(self, name: str) -> bytes | None:
        """A named server secret."""
        async with unavailable():
            value: Any = await aw(self.client.hget(self._secrets, name))
        return None if value is None else bytes(value)

    async def set_secret_if_absent(self, name: str, value: bytes) -> bytes:
        """First writer wins (HSETNX then HGET in one MULTI)."""
        async with unavailable():
            pipe = self.client.pipeline(transaction=True)
            pipe.execute_command("HSETNX", self._secrets, name, bytes(value))
            pipe.hget(self._secrets, name)
            _, stored = await pipe.execute()
        return bytes(stored)

    async def close(self) -> None:
        """Close the connection pool."""
        await redis_client.close(self.client)
