"""Child process of ``tests/test_F11_crash.py``: store writes in a loop until SIGKILL.

Usage: ``python f11_crash_child.py URL NAMESPACE LOG_PATH SEED USER_ID...``

It opens the store (``NAMESPACE`` is the PostgreSQL schema or the Redis prefix), reads the
users' sessions to learn where the previous (killed) run left off, appends ``ready`` to
``LOG_PATH`` and then loops over the writes that matter for credentials:

- ``create SID UID SECRET REFRESH``: a session under ``max_per_user=1`` (evict oldest);
- ``rotate SID PRESENTED SUCCESSOR``: the refresh-token compare-and-set;
- ``delete_user UID KEEP`` (``-`` for none): revoke-all except one session;
- ``valid_after UID VALUE``: ``update_user`` with ``valid_after`` bumped by one.

Each line is flushed *before* its operation starts, so after a kill the parent knows every
hash that was ever about to be written. Hashes are hex. Any outcome that is impossible for
the only writer of the namespace (a rotation of the current hash that does not rotate, a
second live session) ends the process with a message and exit status 3 instead of 137.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import sys
import time

from satchel.stores import open_store
from satchel.stores.base import OnExceed, RotateOutcome, SessionRecord

LIFETIME = 3600.0


def fail(message: str) -> None:
    print(f"f11 child: {message}", file=sys.stderr, flush=True)
    raise SystemExit(3)


async def main(url: str, namespace: str, log_path: str, seed: int, user_ids: list[str]) -> None:
    rng = random.Random(seed)
    store = await open_store(url, prefix=namespace, schema=namespace)
    # uid -> {sid: current refresh hash}, as the store holds it now.
    sessions: dict[str, dict[str, bytes]] = {}
    for uid in user_ids:
        sessions[uid] = {}
        for rec in await store.list_user(uid):
            if rec.refresh_hash is None:
                fail(f"session without a refresh hash for {uid}")
            sessions[uid][rec.id] = rec.refresh_hash
    log = open(log_path, "a", encoding="ascii")  # noqa: SIM115 - held until the kill

    def note(*fields: str) -> None:
        log.write(" ".join(fields) + "\n")
        log.flush()

    note("ready")
    while True:
        op = rng.choices(("create", "rotate", "delete_user", "valid_after"), (3, 5, 1, 2))[0]
        uid = rng.choice(user_ids)
        mine = sessions[uid]
        now = time.time()
        if op == "create":
            sid = secrets.token_hex(16)
            secret, refresh = secrets.token_bytes(32), secrets.token_bytes(32)
            note("create", sid, uid, secret.hex(), refresh.hex())
            record = SessionRecord(
                id=sid,
                user_id=uid,
                secret_hash=secret,
                created_at=now,
                last_seen_at=now,
                idle_expires_at=now + LIFETIME,
                absolute_expires_at=now + LIFETIME,
                refresh_hash=refresh,
            )
            result = await store.create(
                record, max_per_user=1, on_exceed=OnExceed.EVICT_OLDEST, now=now
            )
            if set(result.evicted) != set(mine):
                fail(f"create evicted {len(result.evicted)} sessions, expected {len(mine)}")
            sessions[uid] = {sid: refresh}
        elif op == "rotate" and mine:
            sid, current = next(iter(mine.items()))
            successor = secrets.token_bytes(32)
            note("rotate", sid, current.hex(), successor.hex())
            outcome = await store.rotate_refresh(
                sid, presented_hash=current, successor_hash=successor, now=now, grace=0.0
            )
            if outcome is not RotateOutcome.ROTATED:
                fail(f"rotating the current refresh hash gave {outcome.value}")
            mine[sid] = successor
        elif op == "delete_user":
            keep = next(iter(mine), None) if rng.random() < 0.5 else None
            note("delete_user", uid, keep or "-")
            removed = await store.delete_user(uid, keep=keep)
            if set(removed) != set(mine) - {keep}:
                fail("delete_user removed other sessions than expected")
            sessions[uid] = {k: v for k, v in mine.items() if k == keep}
        elif op == "valid_after":
            user = await store.get_user(uid)
            if user is None:
                fail(f"user {uid} vanished")
                return
            user.valid_after += 1.0
            user.updated_at = now
            note("valid_after", uid, repr(user.valid_after))
            await store.update_user(user)


if __name__ == "__main__":
    url, namespace, log_path, seed, *user_ids = sys.argv[1:]
    asyncio.run(main(url, namespace, log_path, int(seed), user_ids))
