"""The account contract of every store backend: addresses, application claims, imports.

Runs against memory, SQLite, Redis and PostgreSQL (Redis and PostgreSQL skip loudly when the
service is down, and fail on CI), like ``test_store_contract``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import Any

import pytest

from helpers import MakeStores
from satchel.errors import NotFound, UserExists
from satchel.stores import BulkUserStore, EmailUserStore, MemoryStore, SQLiteStore, UserRecord
from satchel.stores.deadline import with_deadline

STORE_KINDS = ("memory", "sqlite", "redis", "postgres", "redis-cluster", "postgres-pgbouncer")
#: The service each backend needs (its pytest mark).
SERVICE = {
    "redis": "redis",
    "postgres": "postgres",
    "redis-cluster": "redis",
    "postgres-pgbouncer": "postgres",
}
CLAIMS = {"tenant_id": 7, "plan": "pro ☃", "scopes": ["a", "b"], "limits": {"n": [1, 2.5, None]}}


@pytest.fixture(
    params=[
        pytest.param(kind, marks=[getattr(pytest.mark, SERVICE[kind])] if kind in SERVICE else [])
        for kind in STORE_KINDS
    ]
)
async def store(request: pytest.FixtureRequest, make_stores: MakeStores) -> Any:
    """One backend object implementing every user store protocol."""
    stores = await make_stores(request.param)
    return stores.users


def user_record(name: str, **fields: Any) -> UserRecord:
    return UserRecord(
        id=uuid.uuid4().hex,
        username=name,
        username_key=name.casefold(),
        password_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        **fields,
    )


def same(a: UserRecord | None, b: UserRecord) -> bool:
    return a is not None and dataclasses.asdict(a) == dataclasses.asdict(b)


# --- addresses and claims -----------------------------------------------------------------


async def test_every_backend_has_the_optional_protocols(store: Any) -> None:
    assert isinstance(store, EmailUserStore)
    assert isinstance(store, BulkUserStore)


async def test_email_and_claims_round_trip(store: Any) -> None:
    alice = user_record("Alice", email="Alice@Example.COM", claims=CLAIMS, roles=["ops"])
    await store.create_user(alice)
    assert same(await store.get_user(alice.id), alice)
    assert same(await store.get_user_by_name("alice"), alice)
    assert same(await store.get_user_by_email("alice@example.com"), alice)
    listed = await store.list_users()
    assert len(listed) == 1 and same(listed[0], alice)
    stored = await store.get_user(alice.id)
    assert stored.email == "Alice@Example.COM"  # kept as given, compared normalised


async def test_account_without_email_or_claims(store: Any) -> None:
    bare = user_record("bare")
    await store.create_user(bare)
    got = await store.get_user(bare.id)
    assert same(got, bare)
    assert got.email is None and got.claims == {}
    # Any number of accounts may have no address.
    await store.create_user(user_record("bare2"))
    assert len(await store.list_users()) == 2


async def test_get_user_by_email_is_case_and_width_insensitive(store: Any) -> None:
    carol = user_record("carol", email="Carol.Straße@Example.org")
    await store.create_user(carol)
    for spelling in (
        "carol.straße@example.org",
        "CAROL.STRASSE@EXAMPLE.ORG",
        "ｃａｒｏｌ.straße@example.org",  # fullwidth letters: NFKC folds them
    ):
        found = await store.get_user_by_email(spelling)
        assert found is not None and found.id == carol.id, spelling
    assert await store.get_user_by_email("carol@example.org") is None
    assert await store.get_user_by_email("") is None


async def test_email_is_unique_case_insensitively(store: Any) -> None:
    first = user_record("dora", email="dora@example.com")
    await store.create_user(first)
    clash = user_record("dora2", email="DORA@example.COM")
    with pytest.raises(UserExists):
        await store.create_user(clash)
    assert await store.get_user(clash.id) is None
    assert await store.get_user_by_name("dora2") is None
    found = await store.get_user_by_email("dora@example.com")
    assert found is not None and found.id == first.id


async def test_concurrent_creates_with_one_email_one_wins(store: Any) -> None:
    async def attempt(i: int) -> bool:
        try:
            await store.create_user(user_record(f"racer{i}", email="race@example.com"))
        except UserExists:
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(i) for i in range(10)))
    assert outcomes.count(True) == 1
    assert len(await store.list_users()) == 1


async def test_update_moves_frees_and_refuses_addresses(store: Any) -> None:
    erin = user_record("erin", email="erin@example.com")
    frank = user_record("frank", email="frank@example.com", claims={"tenant_id": 1})
    await store.create_user(erin)
    await store.create_user(frank)

    erin.email, erin.claims = "Erin@New.example", {"tenant_id": 2}
    await store.update_user(erin)
    assert same(await store.get_user_by_email("erin@new.example"), erin)
    assert await store.get_user_by_email("erin@example.com") is None
    await store.create_user(user_record("other", email="erin@example.com"))  # freed

    frank.email = "ERIN@new.example"
    with pytest.raises(UserExists):
        await store.update_user(frank)
    kept = await store.get_user(frank.id)
    assert kept is not None and kept.email == "frank@example.com"
    assert (await store.get_user_by_email("erin@new.example")).id == erin.id

    erin.email = None
    await store.update_user(erin)
    assert await store.get_user_by_email("erin@new.example") is None
    assert (await store.get_user(erin.id)).email is None
    frank.email = "erin@new.example"
    await store.update_user(frank)  # the address is free again
    assert (await store.get_user_by_email("Erin@New.Example")).id == frank.id


async def test_update_keeping_its_own_email(store: Any) -> None:
    gina = user_record("gina", email="gina@example.com")
    await store.create_user(gina)
    gina.roles, gina.email = ["admin"], "GINA@example.com"
    await store.update_user(gina)
    assert same(await store.get_user_by_email("gina@example.com"), gina)
    with pytest.raises(NotFound):
        await store.update_user(user_record("ghost", email="ghost@example.com"))
    assert await store.get_user_by_email("ghost@example.com") is None


async def test_claims_that_are_not_json_are_refused_before_writing(store: Any) -> None:
    bad = user_record("hank", claims={"when": object()})
    with pytest.raises(ValueError):
        await store.create_user(bad)
    nan = user_record("hank", claims={"x": float("nan")})
    with pytest.raises(ValueError):
        await store.create_user(nan)
    assert await store.list_users() == []


async def corrupt_claims(store: Any, user: UserRecord) -> None:
    """Overwrite a user's claims with a JSON array, straight into the backend."""
    if isinstance(store, MemoryStore):
        store._users[user.id] = store._users[user.id].replace('"claims":{"a":1}', '"claims":[1]')
    elif isinstance(store, SQLiteStore):
        store._conn.execute("UPDATE users SET claims = '[1]' WHERE id = ?", (user.id,))
    elif type(store).__name__ in ("RedisStore", "RedisClusterStore"):
        key = f"{store._user}{user.id}"
        raw = (await store.client.get(key)).decode()
        await store.client.set(key, raw.replace('"claims":{"a":1}', '"claims":[1]'))
    else:
        await store.pool.execute(
            f"UPDATE \"{store.schema}\".users SET claims = '[1]'::jsonb WHERE id = $1", user.id
        )


async def test_F12_corrupt_claims_read_as_no_user(
    store: Any, caplog: pytest.LogCaptureFixture
) -> None:
    user = user_record("ivy", email="ivy@example.com", claims={"a": 1})
    await store.create_user(user)
    await corrupt_claims(store, user)
    with caplog.at_level(logging.WARNING, logger="satchel.stores"):
        assert await store.get_user(user.id) is None
        assert await store.get_user_by_email("ivy@example.com") is None
        assert await store.list_users() == []
    assert any("corrupt user" in r.getMessage() for r in caplog.records)


# --- imports ------------------------------------------------------------------------------


async def test_create_users_inserts_and_reports_duplicates(store: Any) -> None:
    taken = user_record("taken", email="taken@example.com")
    await store.create_user(taken)
    batch = [
        user_record("new1", email="new1@example.com", claims={"t": 1}),
        user_record("TAKEN"),  # username key taken by a stored account
        dataclasses.replace(user_record("same-id"), id=taken.id),  # id taken
        user_record("mail-clash", email="Taken@Example.com"),  # address taken
        user_record("new2"),
        user_record("New2", email="other@example.com"),  # repeats an earlier record's name
        user_record("new3", email="NEW1@example.com"),  # repeats an earlier record's address
        user_record("new4", email="new4@example.com"),
    ]
    refused = await store.create_users(batch)
    assert refused == ["TAKEN", "same-id", "mail-clash", "New2", "new3"]
    for user in (batch[0], batch[4], batch[7]):
        assert same(await store.get_user(user.id), user)
        assert same(await store.get_user_by_name(user.username_key), user)
    assert (await store.get_user_by_email("new1@example.com")).id == batch[0].id
    assert (await store.get_user_by_email("taken@example.com")).id == taken.id
    assert (await store.get_user_by_name("taken")).id == taken.id
    names = [u.username for u in await store.list_users()]
    assert names == ["new1", "new2", "new4", "taken"]
    # Importing the same records again refuses all of them.
    assert await store.create_users(batch) == [u.username for u in batch]
    assert await store.create_users([]) == []


async def test_create_users_across_batches(store: Any) -> None:
    users = [user_record(f"user{i:05d}", email=f"user{i}@example.com") for i in range(2600)]
    users.append(user_record("user00007"))  # a late duplicate of an early record
    assert await store.create_users(users[:1200]) == []
    assert await store.create_users(users) == [u.username for u in users[:1200]] + ["user00007"]
    assert len(await store.list_users(limit=10_000)) == 2600
    last = users[2599]
    assert same(await store.get_user_by_email("USER2599@example.com"), last)


async def test_create_users_writes_nothing_when_a_record_is_invalid(store: Any) -> None:
    batch = [user_record("ok1"), user_record("bad", claims={"x": float("inf")}), user_record("ok2")]
    with pytest.raises(ValueError):
        await store.create_users(batch)
    assert await store.list_users() == []
    assert await store.get_user_by_name("ok1") is None


async def test_created_users_behave_like_created_user(store: Any) -> None:
    [jane] = [user_record("jane", email="jane@example.com")]
    assert await store.create_users([jane]) == []
    with pytest.raises(UserExists):
        await store.create_user(user_record("jane2", email="JANE@example.com"))
    jane.email = "jane@elsewhere.example"
    await store.update_user(jane)
    assert await store.get_user_by_email("jane@example.com") is None
    await store.create_user(user_record("jane3", email="jane@example.com"))


async def test_deadline_wrapper_forwards_the_account_extras(make_stores: MakeStores) -> None:
    bounded = with_deadline(await make_stores("memory"), 1.0).users
    assert isinstance(bounded, EmailUserStore) and isinstance(bounded, BulkUserStore)
    kim = user_record("kim", email="kim@example.com")
    assert await bounded.create_users([kim, user_record("KIM")]) == ["KIM"]
    assert same(await bounded.get_user_by_email("KIM@example.com"), kim)
