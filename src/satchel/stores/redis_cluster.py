"""Redis Cluster store (``redis+cluster://``): the Redis store's data, laid out for slots.

On a cluster a command or script may touch keys of one hash slot only, and the slot of a
key is that of its hash tag (the text between the first ``{`` and the next ``}``). So the
layout is chosen per key (``P`` is the prefix, which may not contain braces itself; ``U``
is the user id with ``%`` and ``}`` percent-escaped so it cannot close the tag early)::

    {P:u:U}              zset    the user's session ids (score = created_at)
    {P:u:U}:s:<sid>      hash    one session, in the same slot as its user's index
    P:p:<sid>            string  user id of the session (the pointer); expires with the
                                 session's absolute time-out
    {P:users}:user:<id>  string  user record, JSON          \\
    {P:users}:names      hash    username_key -> user id     | one slot: account scripts
    {P:users}:emails     hash    email key -> user id        / check and write all three
    {P:keys}:keys        hash    kid -> signing key record  \\ one slot
    {P:keys}:secrets     hash    name -> secret bytes       /

Why the pointer. Every session script (create with the per-user limit, touch, delete,
revoke-all, purge) reads or writes the session *and* its user's index, so both must share
the user's tag. But a request names only the session id, which strategies draw at random
(128 bits, an exact shape checked before any store call), so the slot cannot be computed
from it. Embedding the user's tag in the id would change the token format every strategy
parses; instead a pointer ``P:p:<sid>`` (hashed on the session id, so pointers spread
evenly too) names the user. A lookup is then two round trips (pointer, then session);
with the default per-process cache that happens once per credential, not per request.
The pointer is written first with ``SET NX`` (which also refuses a duplicate id across the
whole cluster) and removed after the session; a pointer left dangling by a crash in
between leads to no session and expires by itself.

Sessions spread over the masters by user (``tests/test_redis_cluster_store.py`` measures
it). Accounts and keys are global lookups (a username index cannot be per user), so each
group lives under one fixed tag: one slot holds every account, which is fine for the
account counts one Redis serves; at tens of millions of accounts keep users in PostgreSQL
(``SATCHEL_STORE=postgresql://...``, ``SATCHEL_SESSIONS_STORE=redis+cluster://...``).
"""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster

from satchel.errors import ConfigurationError, SessionLimitExceeded
from satchel.stores import codec, redis_client, redis_cluster_client, redis_lua, rules
from satchel.stores.base import CreateResult, OnExceed, RotateOutcome, SessionRecord
from satchel.stores.redis import RedisStore
from satchel.stores.redis_client import DEFAULT_TIMEOUT, aw, glob_escape, unavailable
from satchel.stores.redis_fields import ms, session_fields


def escape_tag(text: str) -> str:
    """``text`` with ``%`` and ``}`` percent-escaped: it can no longer end a hash tag."""
    return text.replace("%", "%25").replace("}", "%7D")


def unescape_tag(text: str) -> str:
    """Inverse of :func:`escape_tag`."""
    return text.replace("%7D", "}").replace("%25", "%")


class RedisClusterStore(RedisStore):
    """Sessions, users and keys on a Redis Cluster; see the module docstring for the layout.

    Use :meth:`from_url` (or :func:`satchel.stores.open_stores` with ``redis+cluster://``)
    and call :meth:`check` once at startup.
    """

    client: RedisCluster

    def __init__(self, client: RedisCluster, *, prefix: str = "satchel") -> None:
        if "{" in prefix or "}" in prefix:
            raise ConfigurationError(
                "A Redis Cluster key prefix takes no braces: satchel adds the hash tags."
            )
        super().__init__(client, prefix=prefix)
        self._tag = f"{{{prefix}:u:"
        self._pointer = f"{prefix}:p:"
        self._user = f"{{{prefix}:users}}:user:"
        self._users = f"{{{prefix}:users}}:names"
        self._emails = f"{{{prefix}:users}}:emails"
        self._keys = f"{{{prefix}:keys}}:keys"
        self._secrets = f"{{{prefix}:keys}}:secrets"
        self._set_secret = redis_client.register_script(client, redis_lua.HSETNX_THEN_HGET)

    def __repr__(self) -> str:
        return f"RedisClusterStore(prefix={self.prefix!r})"

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "satchel",
        socket_timeout: float = DEFAULT_TIMEOUT,
        socket_connect_timeout: float = DEFAULT_TIMEOUT,
        max_connections: int | None = None,
    ) -> RedisClusterStore:
        """A store on the cluster seeds of ``url`` (:func:`redis_cluster_client.connect`)."""
        client = redis_cluster_client.connect(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            max_connections=max_connections,
        )
        return cls(client, prefix=prefix)

    async def check(self) -> None:
        """Load the slot map, ping every master and warn about an evicting policy (F13)."""
        async with unavailable():
            await self.client.initialize()
            primaries = self.client.get_primaries()
            for node in primaries:
                await aw(self.client.ping(target_nodes=node))
        for node in primaries:
            try:
                config = await aw(self.client.config_get("maxmemory-policy", target_nodes=node))
            except redis_client._FAILURES:
                return  # CONFIG is often disabled on managed Redis; best effort
            redis_client.warn_eviction_policy(config)

    # --- key names ------------------------------------------------------------------------

    def index_key(self, user_id: str) -> str:
        """The user's session index; its tag is the slot of all the user's sessions."""
        return f"{self._tag}{escape_tag(user_id)}}}"

    def session_key(self, user_id: str, session_id: str) -> str:
        """The hash of one session, in its user's slot."""
        return f"{self.index_key(user_id)}:s:{session_id}"

    async def owner(self, session_id: str) -> str | None:
        """The user id the pointer of ``session_id`` names, or None."""
        async with unavailable():
            raw: Any = await self.client.get(self._pointer + session_id)
        return None if raw is None else bytes(raw).decode()

    async def _drop_pointers(self, session_ids: list[str]) -> None:
        if session_ids:
            # UNLINK of keys in many slots: redis-py sends one command per slot.
            await self.client.unlink(*(self._pointer + sid for sid in session_ids))

    # --- SessionStore ---------------------------------------------------------------------

    async def create(
        self,
        record: SessionRecord,
        *,
        max_per_user: int | None = None,
        on_exceed: OnExceed = OnExceed.EVICT_OLDEST,
        now: float,
    ) -> CreateResult:
        """Claim the pointer, then the per-user script in the user's slot (see the module)."""
        rules.check_max_per_user(max_per_user)
        index = self.index_key(record.user_id)
        prefix = f"{index}:s:"
        args: list[Any] = [
            prefix,
            ms(now),
            "" if max_per_user is None else str(max_per_user),
            "1" if on_exceed is OnExceed.DENY else "0",
            ms(record.created_at),
            str(min(int(ms(record.idle_expires_at)), int(ms(record.absolute_expires_at)))),
            record.id,
        ]
        for name, value in session_fields(record).items():
            args += (name, value)
        pointer = self._pointer + record.id
        async with unavailable():
            # The pointer lives until the absolute time-out: touch never moves that one.
            claimed = await self.client.set(
                pointer, record.user_id, nx=True, pxat=int(ms(record.absolute_expires_at))
            )
            if not claimed:
                raise ValueError("session id already exists")
            try:
                result = await self._create(keys=[prefix + record.id, index], args=args)
            except BaseException:
                await self._forget(pointer)
                raise
            if result in (-1, -2):
                await self.client.delete(pointer)
            if result == -1:
                raise ValueError("session id already exists")
            if result == -2:
                raise SessionLimitExceeded()
            evicted = [sid.decode() for sid in result]
            await self._drop_pointers(evicted)
        return CreateResult(evicted=evicted)

    async def _forget(self, pointer: str) -> None:
        # Best effort while another error is on its way: a dangling pointer names a session
        # that does not exist, and it expires by itself.
        try:
            await self.client.delete(pointer)
        except redis_client._FAILURES:
            return

    async def get(self, session_id: str) -> SessionRecord | None:
        """Pointer, then the session hash in the user's slot."""
        user_id = await self.owner(session_id)
        if user_id is None:
            return None
        async with unavailable():
            raw = await aw(self.client.hgetall(self.session_key(user_id, session_id)))
        return self._session(session_id, raw)

    async def update_data(self, session_id: str, data: dict[str, Any]) -> bool:
        """Replace the session's ``data`` in the user's slot; never recreates a session."""
        user_id = await self.owner(session_id)
        if user_id is None:
            return False
        script = redis_client.register_script(self.client, redis_lua.SET_DATA)  # step-ups only
        async with unavailable():
            done = await script(
                keys=[self.session_key(user_id, session_id)], args=[codec.data_to_json(data)]
            )
        return bool(done)

    async def touch(self, session_id: str, *, last_seen_at: float, idle_expires_at: float) -> bool:
        """Record activity and move the expiry; never recreates a deleted session."""
        user_id = await self.owner(session_id)
        if user_id is None:
            return False
        async with unavailable():
            done = await self._touch(
                keys=[self.session_key(user_id, session_id), self.index_key(user_id)],
                args=[ms(last_seen_at), ms(idle_expires_at), ""],
            )
        return bool(done)

    async def delete(self, session_id: str) -> SessionRecord | None:
        """Remove the session and its index entry, then its pointer; idempotent."""
        user_id = await self.owner(session_id)
        if user_id is None:
            return None
        async with unavailable():
            raw = await self._delete(
                keys=[self.session_key(user_id, session_id), self.index_key(user_id)],
                args=["", session_id],
            )
            await self.client.delete(self._pointer + session_id)
        return self._session(session_id, raw)

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """Remove every session of the user except ``keep`` (one script), then the pointers."""
        index = self.index_key(user_id)
        async with unavailable():
            removed = await self._delete_user(
                keys=[index], args=[f"{index}:s:", keep or "", "0" if keep is None else "1"]
            )
            ids = [sid.decode() for sid in removed]
            await self._drop_pointers(ids)
        return ids

    async def _load_user(self, user_id: str) -> list[SessionRecord]:
        index = self.index_key(user_id)
        async with unavailable():
            ids = [sid.decode() for sid in await self.client.zrange(index, 0, -1)]
            if not ids:
                return []
            pipe = self.client.pipeline(transaction=False)
            for sid in ids:
                pipe.hgetall(f"{index}:s:{sid}")
            raws = await pipe.execute()
        return [r for sid, raw in zip(ids, raws, strict=True) if (r := self._session(sid, raw))]

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """The user's sessions, oldest first (all in the user's slot)."""
        return await self._load_user(user_id)

    async def _user_ids(self) -> list[str]:
        """Every user with a session index (SCAN over every master; administration only)."""
        skip = len(self._tag)
        out: list[str] = []
        async with unavailable():
            async for key in self.client.scan_iter(
                match=glob_escape(self._tag) + "*", count=1000, _type="zset"
            ):
                text = key.decode()
                if text.endswith("}"):
                    out.append(unescape_tag(text[skip:-1]))
        return out

    async def list_all(self, *, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        """Every user's sessions, newest first; walks every index (administration only)."""
        records: list[SessionRecord] = []
        for user_id in await self._user_ids():
            records += await self._load_user(user_id)
        records.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return rules.page(records, limit=limit, offset=offset)

    async def purge_expired(self, now: float) -> int:
        """Delete sessions expired by ``now`` and prune stale index entries, user by user.

        Pointers of purged sessions are left to expire by themselves (at the session's
        absolute time-out): they name sessions that no longer exist.
        """
        total = 0
        for user_id in await self._user_ids():
            index = self.index_key(user_id)
            async with unavailable():
                total += int(await self._purge_user(keys=[index], args=[f"{index}:s:", ms(now)]))
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
        """Compare-and-set of the refresh hash in one script in the user's slot."""
        user_id = await self.owner(session_id)
        if user_id is None:
            return RotateOutcome.UNKNOWN
        async with unavailable():
            outcome = await self._rotate(
                keys=[self.session_key(user_id, session_id)],
                args=[bytes(presented_hash), bytes(successor_hash), ms(now), ms(grace)],
            )
        return RotateOutcome(outcome.decode())

    # --- KeyStore -------------------------------------------------------------------------

    async def set_secret_if_absent(self, name: str, value: bytes) -> bytes:
        """First writer wins (HSETNX then HGET in one script: no MULTI on a cluster)."""
        async with unavailable():
            stored = await self._set_secret(keys=[self._secrets], args=[name, bytes(value)])
        return bytes(stored)
