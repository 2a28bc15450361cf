"""One contract for the second-factor store on every backend (memory, SQLite, Redis,
PostgreSQL): compare-and-set of factor documents, single-use records taken exactly once,
and the session-data update a step-up writes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from helpers import MakeStores
from helpers import make_session as session
from satchel.accounts.mfa import factors as factors_mod
from satchel.accounts.mfa.documents import FactorDocuments
from satchel.accounts.mfa.factors import Factors, Passkey
from satchel.stores.factors import FactorStore, factor_store_for

KINDS = ("memory", "sqlite", "redis", "postgres")
NOW = 1_800_000_000.0


@pytest.fixture(
    params=[
        pytest.param(k, marks=[getattr(pytest.mark, k)] if k in ("redis", "postgres") else [])
        for k in KINDS
    ]
)
async def backend(request: pytest.FixtureRequest, make_stores: MakeStores) -> Any:
    return (await make_stores(request.param)).keys


async def test_documents_are_replaced_by_compare_and_set(backend: Any) -> None:
    store: FactorStore = factor_store_for(backend)
    assert isinstance(store, FactorStore)
    assert await store.load("u1") == (None, 0)
    assert await store.save("u1", '{"a":1}', 0)
    assert not await store.save("u1", '{"a":2}', 0)  # someone else created it first
    assert await store.load("u1") == ('{"a":1}', 1)
    assert await store.save("u1", '{"a":3}', 1)
    assert not await store.save("u1", '{"a":4}', 1)  # stale version
    assert await store.load("u1") == ('{"a":3}', 2)
    assert await store.load("u2") == (None, 0)
    assert await store.remove("u1") and not await store.remove("u1")
    assert await store.load("u1") == (None, 0)


async def test_single_use_records_are_taken_once(backend: Any) -> None:
    store = factor_store_for(backend)
    await store.put_once("k1", "value", NOW + 60, NOW)
    assert await store.peek_once("k1", NOW) == "value"
    assert await store.peek_once("k1", NOW) == "value"  # peeking leaves it
    assert await store.take_once("k1", NOW) == "value"
    assert await store.take_once("k1", NOW) is None
    await store.put_once("k2", "late", NOW + 60, NOW)
    assert await store.peek_once("k2", NOW + 61) is None
    assert await store.take_once("k2", NOW + 61) is None
    assert await store.take_once("missing", NOW) is None


async def test_concurrent_takes_get_one_winner(backend: Any) -> None:
    store = factor_store_for(backend)
    await store.put_once("race", "prize", NOW + 60, NOW)
    results = await asyncio.gather(*(store.take_once("race", NOW) for _ in range(8)))
    assert results.count("prize") == 1


async def test_concurrent_updates_all_land(backend: Any) -> None:
    """Every change goes through the compare-and-set loop: none is lost."""
    docs = FactorDocuments(factor_store_for(backend), backend)

    def add(n: int) -> Any:
        def change(f: Factors) -> tuple[None, bool]:
            f.recovery.append(f"h{n}")
            return None, True

        return change

    await asyncio.gather(*(docs.update("racer", add(n)) for n in range(6)))
    assert sorted((await docs.read("racer")).recovery) == [f"h{n}" for n in range(6)]


async def test_factor_documents_round_trip(backend: Any) -> None:
    docs = FactorDocuments(factor_store_for(backend), backend)
    key = Passkey(
        b"\x01" * 16, b"cose", 7, "Laptop", NOW, device_type="multi_device", backed_up=True
    )

    def change(f: Factors) -> tuple[None, bool]:
        f.passkeys.append(key)
        return None, True

    await docs.update("pk", change)
    back = (await docs.read("pk")).passkeys[0]
    assert (back.credential_id, back.public_key, back.sign_count, back.name) == (
        b"\x01" * 16,
        b"cose",
        7,
        "Laptop",
    )
    assert back.synced and factors_mod.decode(factors_mod.encode(Factors())).empty


async def test_session_data_is_updated_in_place_only(backend: Any) -> None:
    record = session(NOW, user="alice")
    await backend.create(record, now=NOW)
    assert await backend.update_data(record.id, {"u": "alice", "amr": ["pwd"], "at": NOW + 5})
    back = await backend.get(record.id)
    assert back.data == {"u": "alice", "amr": ["pwd"], "at": NOW + 5}
    await backend.delete(record.id)
    assert not await backend.update_data(record.id, {"u": "alice"})
    assert await backend.get(record.id) is None  # never recreated
