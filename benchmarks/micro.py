"""Micro benchmarks: per-operation costs, peers and floors side by side in one process.

Every group measures the same input with each implementation, so ratios within a group come
from one run. Timings are the best of N repeats of a calibrated loop (timeit's method).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import secrets
import sqlite3
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Any

from benchmarks import ops_micro, satchel_side
from benchmarks.common import (
    MicroRow,
    Results,
    Settings,
    Timing,
    run_async,
    time_async,
    time_group,
    time_sync,
)

Progress = Callable[[str], None]

ALGORITHMS = ("HS256", "EdDSA", "ES256")


def _row(group: str, name: str, timing: Timing, kind: str = "peer", note: str = "") -> MicroRow:
    return MicroRow(
        group=group,
        name=name,
        best_ns=timing.best_ns,
        median_ns=timing.median_ns,
        number=timing.number,
        repeats=timing.repeats,
        kind=kind,
        note=note,
    )


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


ISSUER = "satchel-bench"
AUDIENCE = "satchel-bench"
KID = "bench-1"
ACCESS_TYP = "at+jwt"


def sample_claims(now: float) -> dict[str, Any]:
    """Claims shaped like satchel's access tokens (RFC 9068 profile), for every library."""
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(uuid.uuid4()),
        "iat": int(now),
        "exp": int(now) + 300,
        "jti": secrets.token_urlsafe(16),
        "roles": ["user"],
        "sid": secrets.token_urlsafe(16),
    }


class TokenKeys:
    """One key per algorithm, loaded once in each library's own key type."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519
        from joserfc.jwk import ECKey, OctKey, OKPKey

        self.secret = secrets.token_bytes(32)
        self.ed_private = ed25519.Ed25519PrivateKey.generate()
        self.ec_private = ec.generate_private_key(ec.SECP256R1())
        self.pyjwt_sign = {
            "HS256": self.secret,
            "EdDSA": self.ed_private,
            "ES256": self.ec_private,
        }
        self.pyjwt_verify = {
            "HS256": self.secret,
            "EdDSA": self.ed_private.public_key(),
            "ES256": self.ec_private.public_key(),
        }
        self.joserfc_sign = {
            "HS256": OctKey.import_key(self.secret),
            "EdDSA": OKPKey.import_key(self.ed_private),
            "ES256": ECKey.import_key(self.ec_private),
        }
        self.joserfc_verify = {
            "HS256": self.joserfc_sign["HS256"],
            "EdDSA": OKPKey.import_key(self.ed_private.public_key()),
            "ES256": ECKey.import_key(self.ec_private.public_key()),
        }


def token_micro(settings: Settings, results: Results, progress: Progress) -> None:
    """Sign and verify per algorithm: PyJWT, joserfc, satchel and the floors, same tokens.

    Every verifier checks the signature, ``exp``, ``iss`` and ``aud`` of one token (signed by
    satchel when it is importable, else by PyJWT with the same header and claims), and each
    must accept it before it is timed.
    """
    # joserfc warns on every EdDSA use (RFC 9864 prefers "Ed25519"); the benchmark keeps the
    # spelling PyJWT and satchel issue, so silence the repeated warning for this run.
    warnings.filterwarnings("ignore", message=".*EdDSA.*", module="joserfc")
    import jwt as pyjwt
    from joserfc import jwt as jose_jwt
    from joserfc.jwt import JWTClaimsRegistry

    keys = TokenKeys()
    claims = sample_claims(time.time())
    registry = JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": AUDIENCE},
        exp={"essential": True},
        sub={"essential": True},
    )
    satchel = satchel_side.token_tools(keys, results)
    header = {"kid": KID, "typ": ACCESS_TYP}

    for alg in ALGORITHMS:
        progress(f"tokens {alg}")
        group = f"verify {alg}"
        if satchel is not None:
            token = satchel["sign"](alg, claims)()
        else:
            token = pyjwt.encode(claims, keys.pyjwt_sign[alg], algorithm=alg, headers=header)
        pyjwt_key = keys.pyjwt_verify[alg]
        jose_key = keys.joserfc_verify[alg]

        def pyjwt_verify(token: str = token, key: Any = pyjwt_key, alg: str = alg) -> Any:
            return pyjwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub"]},
            )

        def jose_verify(token: str = token, key: Any = jose_key, alg: str = alg) -> Any:
            decoded = jose_jwt.decode(token, key, algorithms=[alg])
            registry.validate(decoded.claims)
            return decoded.claims

        contenders: list[tuple[str, str, Callable[[], Any]]] = [
            ("PyJWT", "peer", pyjwt_verify),
            ("joserfc", "peer", jose_verify),
        ]
        if satchel is not None:
            contenders.append(("satchel", "satchel", satchel["verify"](alg, token)))
        contenders += [(name, "floor", fn) for name, fn in _floors(alg, keys, token)]
        for _, _, fn in contenders:
            fn()  # must accept the very same token before its timing means anything
        timings = time_group({name: fn for name, _, fn in contenders}, settings)
        for name, kind, _ in contenders:
            results.micro.append(_row(group, name, timings[name], kind))

        sign_key = keys.pyjwt_sign[alg]
        jose_sign_key = keys.joserfc_sign[alg]
        jose_header = {"alg": alg, **header}

        def pyjwt_sign(key: Any = sign_key, alg: str = alg) -> str:
            return pyjwt.encode(claims, key, algorithm=alg, headers=header)

        def jose_sign(
            key: Any = jose_sign_key, head: dict[str, str] = jose_header, alg: str = alg
        ) -> str:
            return jose_jwt.encode(head, claims, key, algorithms=[alg])

        signers: list[tuple[str, str, Callable[[], Any]]] = [
            ("PyJWT", "peer", pyjwt_sign),
            ("joserfc", "peer", jose_sign),
        ]
        if satchel is not None:
            signers.append(("satchel", "satchel", satchel["sign"](alg, claims)))
        timings = time_group({name: fn for name, _, fn in signers}, settings)
        for name, kind, _ in signers:
            results.micro.append(_row(f"sign {alg}", name, timings[name], kind))


def _floors(alg: str, keys: TokenKeys, token: str) -> list[tuple[str, Callable[[], object]]]:
    """The least work that can verify ``token``: the primitive alone, and (HS256) by hand."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    head, payload, sig_part = token.split(".")
    signing_input = f"{head}.{payload}".encode()
    signature = _b64d(sig_part)
    if alg == "HS256":
        secret = keys.secret

        def raw_hmac() -> bool:
            mac = hmac.digest(secret, signing_input, "sha256")
            if not hmac.compare_digest(mac, signature):
                raise ValueError("bad signature")
            return True

        def by_hand() -> dict[str, Any]:
            head, payload, sig = token.split(".")
            mac = hmac.digest(secret, f"{head}.{payload}".encode(), "sha256")
            if not hmac.compare_digest(mac, _b64d(sig)):
                raise ValueError("bad signature")
            header = json.loads(_b64d(head))
            if header.get("alg") != "HS256":
                raise ValueError("bad alg")
            data: dict[str, Any] = json.loads(_b64d(payload))
            if not isinstance(data.get("exp"), int) or data["exp"] <= time.time():
                raise ValueError("expired")
            if data.get("iss") != ISSUER or data.get("aud") != AUDIENCE:
                raise ValueError("wrong issuer or audience")
            return data

        return [
            ("raw HMAC-SHA256 + compare", raw_hmac),
            ("by hand: split + HMAC + json + claims", by_hand),
        ]
    if alg == "EdDSA":
        ed_public = keys.ed_private.public_key()

        def raw_ed25519() -> None:
            ed_public.verify(signature, signing_input)

        return [("raw cryptography Ed25519", raw_ed25519)]
    ec_public = keys.ec_private.public_key()
    algorithm = ec.ECDSA(hashes.SHA256())

    def raw_es256() -> None:
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        ec_public.verify(encode_dss_signature(r, s), signing_input, algorithm)

    return [("raw cryptography ECDSA P-256", raw_es256)]


def sqlite_micro(settings: Settings, results: Results, progress: Progress) -> None:
    """Point lookup by primary key: the stdlib driver and aiosqlite on the same file."""
    progress("sqlite lookup")
    path = settings.workdir / "micro-sqlite.db"
    path.unlink(missing_ok=True)
    rows = 10_000
    ids = [secrets.token_urlsafe(16) for _ in range(rows)]
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE sessions (id TEXT PRIMARY KEY, data TEXT NOT NULL)")
        conn.executemany(
            "INSERT INTO sessions VALUES (?, ?)", [(i, json.dumps({"u": i})) for i in ids]
        )
    conn.close()
    query = "SELECT data FROM sessions WHERE id = ?"
    conn = sqlite3.connect(path)
    try:
        position = 0

        def lookup() -> object:
            nonlocal position
            position = (position + 7919) % rows
            return conn.execute(query, (ids[position],)).fetchone()

        assert lookup() is not None
        results.micro.append(_row("SQLite point lookup", "sqlite3", time_sync(lookup, settings)))
    finally:
        conn.close()

    async def with_aiosqlite() -> Timing:
        import aiosqlite

        async with aiosqlite.connect(path) as db:
            position = 0

            async def lookup() -> object:
                nonlocal position
                position = (position + 7919) % rows
                async with db.execute(query, (ids[position],)) as cursor:
                    return await cursor.fetchone()

            assert await lookup() is not None
            return await time_async(lookup, settings)

    try:
        timing = run_async(with_aiosqlite())
        results.micro.append(_row("SQLite point lookup", "aiosqlite", timing))
    except ImportError as exc:
        results.skip("SQLite point lookup / aiosqlite", exc)


def redis_micro(settings: Settings, results: Results, progress: Progress) -> None:
    """GET round trip: redis.asyncio and a raw asyncio socket speaking RESP."""
    progress("redis GET")
    from urllib.parse import urlsplit

    import redis.asyncio as aioredis

    key = f"{settings.redis_prefix}:micro-get"
    value = secrets.token_urlsafe(48)

    async def measure() -> tuple[Timing, Timing]:
        client = aioredis.Redis.from_url(settings.redis_url)
        try:
            await client.set(key, value, ex=600)

            async def get() -> object:
                return await client.get(key)

            assert await get() == value.encode()
            library = await time_async(get, settings)
        finally:
            await client.delete(key)
            await client.aclose()

        url = urlsplit(settings.redis_url)
        reader, writer = await asyncio.open_connection(url.hostname, url.port or 6379)
        try:
            db = (url.path or "/0").lstrip("/") or "0"
            if db != "0":
                writer.write(f"*2\r\n$6\r\nSELECT\r\n${len(db)}\r\n{db}\r\n".encode())
                await reader.readline()
            raw_key = key.encode()
            writer.write(
                b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                % (len(raw_key), raw_key, len(value), value.encode())
            )
            await reader.readline()
            command = b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(raw_key), raw_key)

            async def raw_get() -> bytes:
                writer.write(command)
                head = await reader.readline()
                size = int(head[1:])
                return await reader.readexactly(size + 2)

            assert (await raw_get())[:-2] == value.encode()
            raw = await time_async(raw_get, settings)
            writer.write(b"*2\r\n$3\r\nDEL\r\n$%d\r\n%s\r\n" % (len(raw_key), raw_key))
            await reader.readline()
        finally:
            writer.close()
            await writer.wait_closed()
        return library, raw

    library, raw = run_async(measure())
    results.micro.append(_row("Redis GET round trip", "redis.asyncio", library))
    results.micro.append(_row("Redis GET round trip", "raw socket (RESP)", raw, "floor"))


def argon2_micro(settings: Settings, results: Results, progress: Progress) -> None:
    """The bare argon2 verify that every password login pays (argon2-cffi defaults)."""
    progress("argon2")
    from argon2 import PasswordHasher

    hasher = PasswordHasher()
    password = "correct horse battery staple"
    stored = hasher.hash(password)
    timing = time_sync(lambda: hasher.verify(stored, password), settings)
    results.micro.append(
        _row("login", "argon2-cffi verify (defaults)", timing, "floor", note=_argon2_params(hasher))
    )


def _argon2_params(hasher: Any) -> str:
    return f"t={hasher.time_cost} m={hasher.memory_cost} KiB p={hasher.parallelism}"


def run(settings: Settings, results: Results, progress: Progress) -> None:
    """Every micro benchmark; a group that cannot run is skipped with its reason."""
    steps: list[tuple[str, Callable[[Settings, Results, Progress], None]]] = [
        ("token sign/verify", token_micro),
        ("SQLite point lookup", sqlite_micro),
        ("Redis GET round trip", redis_micro),
        ("argon2", argon2_micro),
        ("satchel authenticate()", satchel_side.authenticate_micro),
        ("satchel login", satchel_side.login_micro),
        ("metrics cost", ops_micro.metrics_micro),
    ]
    for name, step in steps:
        try:
            step(settings, results, progress)
        except Exception as exc:  # one broken group must not lose the rest of the run
            results.skip(f"micro / {name}", f"{type(exc).__name__}: {exc}")
