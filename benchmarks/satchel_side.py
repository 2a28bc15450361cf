"""satchel's own rows, built only through satchel's public API.

Each piece is used once it is importable and configurable; otherwise its rows are skipped
and the reason is written into the report, so a partial installation still gives a report.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from benchmarks.common import (
    MicroRow,
    Results,
    Settings,
    Timing,
    run_async,
    summarise,
    time_async,
    time_group_async,
)
from benchmarks.dpop_micro import dpop_extra
from benchmarks.specs import AppSpec, Credential

Progress = Callable[[str], None]

ISSUER = "satchel-bench"
AUDIENCE = "satchel-bench"
KID = "bench-1"
BENCH_USER = "bench-user"
BENCH_PASSWORD = "bench-password-not-a-secret"


def importable(module: str) -> tuple[Any, str]:
    """The module, or None and why it could not be imported."""
    try:
        return importlib.import_module(module), ""
    except Exception as exc:  # ImportError, or a half-written module failing at import
        return None, f"{module} not importable ({type(exc).__name__}: {exc})"


# --- configurations ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    """One satchel configuration: a column of the comparison table."""

    key: str
    label: str
    state: str  # where the state lives, for the table
    strategy: str
    sessions: str  # "sqlite" | "redis" | "redis-cluster" | "pgbouncer"
    cache: bool  # the per-process cache of verified sessions (needs a cross-process bus)
    alg: str = "EdDSA"

    def settings(self, settings: Settings) -> dict[str, Any]:
        """Keyword arguments of :class:`satchel.config.settings.Settings` for this configuration."""
        store = f"sqlite:///{settings.workdir / f'satchel-{self.key}.db'}"
        values: dict[str, Any] = {
            "strategy": self.strategy,
            "store": store,
            "transports": ["bearer"],
            "key_prefix": settings.redis_prefix,
            "jwt_alg": self.alg,
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "cookie_secure": False,
            # Capacity is measured on a busy shared machine: a slow moment must not turn
            # into a fail-closed 503 the way the production default (2 s) intends.
            "store_timeout": 10.0,
        }
        if self.sessions == "redis":
            values["sessions_store"] = settings.redis_url
            values["redis_url"] = settings.redis_url
        if self.sessions in ("redis-cluster", "pgbouncer"):
            from benchmarks.services import scaled_out_settings

            values.update(scaled_out_settings(self.sessions, settings))
        values["cache"] = self.cache
        return values

    def env(self, settings: Settings) -> dict[str, str]:
        """The same settings as ``SATCHEL_*`` environment variables (for the server process)."""
        out = {}
        for name, value in known_settings(self.settings(settings)).items():
            text = ",".join(value) if isinstance(value, list) else str(value)
            out[f"SATCHEL_{name.upper()}"] = text.lower() if isinstance(value, bool) else text
        return out


def known_settings(values: dict[str, Any]) -> dict[str, Any]:
    """Only the fields this satchel version's Settings has (older ones lack e.g. ``cache``)."""
    from satchel.config.settings import Settings as SatchelSettings

    return {k: v for k, v in values.items() if k in SatchelSettings.model_fields}


CONFIGS = (
    Config("session-sqlite", "session + SQLite", "SQLite file", "session", "sqlite", True),
    Config("session-redis", "session + Redis", "Redis", "session", "redis", False),
    Config(
        "session-redis-cache",
        "session + Redis + local cache",
        "Redis, cached in each process",
        "session",
        "redis",
        True,
    ),
    Config("jwt-hs256", "JWT HS256", "token (key in store)", "jwt", "sqlite", True, alg="HS256"),
    Config("jwt-eddsa", "JWT EdDSA", "token (key in store)", "jwt", "sqlite", True, alg="EdDSA"),
    Config(
        "hybrid",
        "hybrid (EdDSA)",
        "token + Redis sessions, revocations in memory",
        "hybrid",
        "redis",
        True,
        alg="EdDSA",
    ),
    Config(
        "session-redis-cluster-cache",
        "session + Redis Cluster + local cache",
        "Redis Cluster (3 masters), cached in each process",
        "session",
        "redis-cluster",
        True,
    ),
    Config(
        "session-pgbouncer-cache",
        "session + PostgreSQL via PgBouncer + local cache",
        "PostgreSQL through PgBouncer (transaction mode), cached in each process",
        "session",
        "pgbouncer",
        True,
    ),
)
#: Columns on services the run starts itself: their end-to-end runs are left out of --quick.
SCALED_OUT = ("redis-cluster", "pgbouncer")


@asynccontextmanager
async def opened(config: Config, settings: Settings) -> AsyncIterator[Any]:
    """A started ``ConfiguredAuth`` for ``config`` (closed afterwards)."""
    from satchel.config.build import build_auth
    from satchel.config.settings import Settings as SatchelSettings

    auth = await build_auth(SatchelSettings(**known_settings(config.settings(settings))))
    try:
        await auth.start()
        yield auth
    finally:
        await auth.close()


async def bench_user(auth: Any) -> Any:
    """The benchmark account, created on first use."""
    from satchel.errors import UserExists

    try:
        return await auth.users.create_user(BENCH_USER, BENCH_PASSWORD, roles=["user"])
    except UserExists:
        return await auth.users.get_by_name(BENCH_USER)


# --- tokens -----------------------------------------------------------------------------------


def claims_policy() -> Any:
    from satchel.jose.claims import ClaimsPolicy

    return ClaimsPolicy(issuer=ISSUER, audience=AUDIENCE)


def keysets(keys: Any) -> dict[str, Any]:
    """satchel key sets holding the very keys the peers use, per algorithm."""
    from satchel.jose.jwk import Ed25519Key, ES256Key, HS256Key
    from satchel.jose.keyset import KeySet

    return {
        "HS256": KeySet(HS256Key(KID, keys.secret)),
        "EdDSA": KeySet(Ed25519Key(KID, private=keys.ed_private)),
        "ES256": KeySet(ES256Key(KID, private=keys.ec_private)),
    }


def token_tools(keys: Any, results: Results) -> dict[str, Any] | None:
    """satchel's sign and verify per algorithm, or None (with the reason recorded)."""
    for module in ("satchel.jose.claims", "satchel.jose.jwk"):
        found, why = importable(module)
        if found is None:
            results.skip("micro / satchel token sign & verify", why)
            return None
    try:
        import satchel.jose.claims as sjwt

        policy = claims_policy()
        sets = keysets(keys)
    except Exception as exc:
        results.skip("micro / satchel token sign & verify", f"{type(exc).__name__}: {exc}")
        return None

    def signer(alg: str, claims: dict[str, Any]) -> Callable[[], object]:
        keyset = sets[alg]

        def sign() -> str:
            return sjwt.issue(
                keyset,
                policy,
                sub=claims["sub"],
                now=claims["iat"],
                ttl=claims["exp"] - claims["iat"],
                roles=claims["roles"],
                sid=claims["sid"],
                jti=claims["jti"],
            )

        return sign

    def verifier(alg: str, token: str) -> Callable[[], object]:
        keyset = sets[alg]
        clock = time.time

        def verify() -> object:
            return sjwt.verify(token, keyset, policy, clock())

        return verify

    return {"sign": signer, "verify": verifier, "typ": sjwt.ACCESS_TOKEN_TYPE}


# --- authenticate() and the comparison table ------------------------------------------------


def _micro(group: str, name: str, timing: Timing, note: str = "") -> MicroRow:
    return MicroRow(
        group,
        name,
        timing.best_ns,
        timing.median_ns,
        timing.number,
        timing.repeats,
        "satchel",
        note,
    )


async def _authenticate_one(config: Config, settings: Settings, results: Results) -> None:
    from satchel.strategies.base import LoginContext

    # Credentials are issued by one Auth and verified by another on the same stores, as
    # when a login on one server process is followed by requests to another: the verifier
    # has never seen them, so nothing cached at issue time can flatter "first seen".
    async with opened(config, settings) as issuer, opened(config, settings) as auth:
        user = await bench_user(issuer)
        strategy = auth.strategy
        ctx = LoginContext(ip="127.0.0.1", user_agent="satchel-bench")

        # First seen: every credential is verified exactly once, so no cache can help.
        first_number = 100 if settings.quick else 1000
        first_repeats = 2 if settings.quick else 5
        tokens: list[str] = []
        for _ in range(first_number * first_repeats):
            _, issued = await issuer.strategy.issue(user, ctx)
            tokens.append(issued.access_token)

        # Each repeat verifies its tokens once through satchel, then (when the column has
        # one) once with the bare signature primitive: the two are timed side by side, so
        # the ratio of the targets is not skewed by the machine's load moving between
        # phases of the run.
        floor = _signature_floor(config, issuer)
        satchel_times: list[float] = []
        floor_times: list[float] = []
        strategy.counters.reset()
        perf = time.perf_counter
        for repeat in range(first_repeats):
            batch = tokens[repeat * first_number : (repeat + 1) * first_number]
            t0 = perf()
            for token in batch:
                await strategy.authenticate(token)
            satchel_times.append(perf() - t0)
            if floor is not None:
                ops = [floor(token) for token in batch]
                t0 = perf()
                for op in ops:
                    op()
                floor_times.append(perf() - t0)
        first = summarise(satchel_times, first_number)
        first_reads = strategy.counters.store_reads / (first_number * first_repeats)

        # Repeated: one credential, warm.
        _, issued = await issuer.strategy.issue(user, ctx)
        token = issued.access_token
        for _ in range(200):
            await strategy.authenticate(token)
        strategy.counters.reset()
        steady = 1000
        for _ in range(steady):
            await strategy.authenticate(token)
        reads = strategy.counters.store_reads / steady
        counters = strategy.counters.snapshot()
        repeated = await time_async(lambda: strategy.authenticate(token), settings)

        group = "authenticate()"
        results.micro.append(_micro(group, f"{config.label} — first seen", first))
        results.micro.append(_micro(group, f"{config.label} — repeated", repeated))
        dpop = await dpop_extra(auth, user, settings)
        header = f"Authorization: Bearer {token}\r\n"
        column = results.table.setdefault(config.label, {})
        column.update(
            {
                "key": config.key,
                "state": config.state,
                "credential_bytes": len(header.encode()),
                "token_chars": len(token),
                "store_reads_per_request": reads,
                "store_reads_first_seen": first_reads,
                "counters_steady": counters,
                "bus": type(getattr(auth, "bus", None)).__name__,
                "authenticate_first_us": first.best_us,
                "floor_first_us": summarise(floor_times, first_number).best_us
                if floor_times
                else None,
                "authenticate_repeated_us": repeated.best_us,
            }
        )
        if dpop is not None:  # the proof check of a DPoP-bound token, less the bearer path's
            group = "DPoP proof check"
            results.micro.append(_micro(group, f"{config.label} — bearer token", dpop[0]))
            results.micro.append(_micro(group, f"{config.label} — DPoP proof", dpop[1]))
            column["dpop_extra_us"] = dpop[1].best_us - dpop[0].best_us


def _signature_floor(config: Config, issuer: Any) -> Callable[[str], Callable[[], object]] | None:
    """The bare Ed25519 verify of a token's signature (EdDSA columns), built from the
    issuer's published JWK with ``cryptography`` alone; None for the other columns."""
    if config.alg != "EdDSA" or config.strategy != "jwt":
        return None
    import base64

    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    def b64d(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    x = issuer.strategy.keyset.active.public_jwk()["x"]
    public = Ed25519PublicKey.from_public_bytes(b64d(x))

    def floor(token: str) -> Callable[[], object]:
        signing_input, _, signature = token.rpartition(".")
        message, raw = signing_input.encode(), b64d(signature)
        return lambda: public.verify(raw, message)

    return floor


def authenticate_micro(settings: Settings, results: Results, progress: Progress) -> None:
    """authenticate() per configuration, first-seen and repeated credential; store reads."""
    module, why = importable("satchel.config.build")
    if module is None:
        results.skip("micro / satchel authenticate()", why)
        return
    for config in CONFIGS:
        progress(f"authenticate {config.label}")
        try:
            try:
                run_async(_authenticate_one(config, settings, results))
            except Exception as exc:
                if type(exc).__name__ != "StoreUnavailable":
                    raise
                run_async(_authenticate_one(config, settings, results))  # one retry: a stall
        except Exception as exc:
            results.skip(f"micro / authenticate() {config.label}", f"{type(exc).__name__}: {exc}")


#: The account of the login benchmark: its own, so it starts without the sessions the
#: authenticate() rows opened for BENCH_USER on the same store.
LOGIN_USER = "login-bench-user"


def login_micro(settings: Settings, results: Results, progress: Progress) -> None:
    """A full ``Auth.login`` next to two floors: the bare argon2 verify with the same
    parameters on the calling thread, and the same verify hopped to a worker thread the way
    satchel's ``PasswordHasher`` runs it (so the report can tell the
    thread hop apart from the rest of a login).

    Every session a timed loop of logins opens is logged out after that loop (outside the
    timing), so each login finds the account with at most the loop's own few sessions.
    """
    module, why = importable("satchel.config.build")
    if module is None:
        results.skip("micro / satchel login", why)
        return
    progress("login vs argon2")

    async def measure() -> None:
        from concurrent.futures import ThreadPoolExecutor

        import argon2

        from satchel.errors import UserExists

        async with opened(CONFIGS[0], settings) as auth:
            try:
                user = await auth.users.create_user(LOGIN_USER, BENCH_PASSWORD, roles=["user"])
            except UserExists:
                user = await auth.users.get_by_name(LOGIN_USER)
            await auth.strategy.revoke_user_sessions(user.id)  # left by an earlier run
            hasher = auth.users.hasher
            bare = argon2.PasswordHasher(
                time_cost=hasher.time_cost,
                memory_cost=hasher.memory_cost,
                parallelism=hasher.parallelism,
                type=argon2.Type.ID,
            )
            stored = user.password_hash
            raw = BENCH_PASSWORD.encode()
            # The same hop as PasswordHasher._run: a dedicated pool of the same size,
            # loop.run_in_executor, the verify in a lambda.
            pool = ThreadPoolExecutor(
                max_workers=hasher.max_concurrency, thread_name_prefix="bench-argon2"
            )

            async def bare_verify() -> object:
                return bare.verify(stored, raw)

            async def threaded_verify() -> object:
                return await asyncio.get_running_loop().run_in_executor(
                    pool, lambda: bare.verify(stored, raw)
                )

            opened_now: list[Any] = []
            most_before_login = 0

            async def login() -> object:
                result = await auth.login(LOGIN_USER, BENCH_PASSWORD)
                opened_now.append(result.identity)
                return result

            async def log_out_all() -> None:
                nonlocal most_before_login
                most_before_login = max(most_before_login, len(opened_now) - 1)
                for identity in opened_now:
                    await auth.logout(identity)
                opened_now.clear()

            try:
                await login()
                await log_out_all()
                if await auth.list_sessions(user.id):
                    raise RuntimeError("the login user still has sessions after logging out")
                timings = await time_group_async(
                    {"bare": bare_verify, "threaded": threaded_verify, "login": login},
                    settings,
                    after={"login": log_out_all},
                )
            finally:
                pool.shutdown(wait=True)
            params = (
                f"argon2id t={hasher.time_cost} m={hasher.memory_cost} KiB p={hasher.parallelism}"
            )
            for key, name, note in (
                ("bare", LOGIN_FLOOR, params),
                (
                    "threaded",
                    LOGIN_THREADED_FLOOR,
                    f"{params}; run_in_executor on a pool of {hasher.max_concurrency}",
                ),
            ):
                timing = timings[key]
                results.micro.append(
                    MicroRow(
                        "login",
                        name,
                        timing.best_ns,
                        timing.median_ns,
                        timing.number,
                        timing.repeats,
                        "floor",
                        note,
                    )
                )
            results.micro.append(
                _micro(
                    "login",
                    LOGIN_SATCHEL,
                    timings["login"],
                    f"{params}; SQLite store; each login finds the account with at most "
                    f"{most_before_login} other live sessions (logged out after each loop)",
                )
            )

    run_async(measure())


#: Row names of the login group (the report's login target looks them up).
LOGIN_FLOOR = "argon2 verify alone (satchel's parameters)"
LOGIN_THREADED_FLOOR = "argon2 verify in a worker thread"
LOGIN_SATCHEL = "satchel Auth.login()"


# --- end to end -------------------------------------------------------------------------------

#: Configurations also served on Starlette and on a bare ASGI app (the others on FastAPI).
FRAMEWORK_CONFIG = "jwt-hs256"
#: Configurations quick mode loads end to end (one per kind of state; the rest in full runs).
QUICK_CONFIGS = ("session-redis-cache", "jwt-eddsa", "hybrid")


async def _prepare_credential(config: Config, settings: Settings) -> str:
    """Create the account and log in through satchel before the server starts."""
    async with opened(config, settings) as auth:
        await bench_user(auth)
        result = await auth.login(BENCH_USER, BENCH_PASSWORD)
        token: str = result.credentials.access_token
        return token


def e2e_specs(settings: Settings, results: Results) -> list[AppSpec]:
    """The satchel apps for the end-to-end runs (one per configuration and framework)."""
    for module in ("satchel.config.build", "satchel.integrations.asgi"):
        found, why = importable(module)
        if found is None:
            results.skip("end to end / satchel configurations", why)
            return []

    prepared: dict[str, str] = {}

    def prepare_for(config: Config) -> Callable[[str, AppSpec, Settings], Credential]:
        def prepare(base_url: str, spec: AppSpec, settings: Settings) -> Credential:
            if config.key not in prepared:
                prepared[config.key] = run_async(_prepare_credential(config, settings))
            return Credential((("Authorization", f"Bearer {prepared[config.key]}"),))

        return prepare

    specs: list[AppSpec] = []
    for config in CONFIGS:
        frameworks = ["fastapi"]
        if config.key == FRAMEWORK_CONFIG:
            frameworks += ["starlette", "asgi"]
        for framework in frameworks:
            name = f"satchel {config.label}"
            if framework != "fastapi":
                name += f" ({'Starlette' if framework == 'starlette' else 'raw ASGI'})"
            specs.append(
                AppSpec(
                    name=name,
                    kind="satchel",
                    framework=framework,
                    target=f"benchmarks.apps.satchel_app:{framework}_app",
                    prepare=prepare_for(config),
                    env=config.env(settings),
                    factory=True,
                    prepare_before_start=True,
                    in_quick=framework == "fastapi"
                    and config.key in QUICK_CONFIGS
                    and config.sessions not in SCALED_OUT,
                )
            )
    specs += serve_specs(settings, prepare_for)
    return specs


SERVE_CONFIG = "jwt-eddsa"  # `satchel serve --strategy jwt` signs with EdDSA by default


Prepare = Callable[[str, AppSpec, Settings], Credential]


def serve_specs(settings: Settings, prepare_for: Callable[[Config], Prepare]) -> list[AppSpec]:
    """`satchel serve` as users run it: every route and page, default transports, uvicorn's
    defaults; once without and once with the access log, to show what the log costs."""
    import sys

    config = next(c for c in CONFIGS if c.key == SERVE_CONFIG)
    env = config.env(settings)
    env.pop("SATCHEL_TRANSPORTS", None)  # the default transports, as `satchel serve` starts
    store = env.pop("SATCHEL_STORE")
    specs = []
    for log in (False, True):
        specs.append(
            AppSpec(
                name=f"satchel serve --strategy jwt ({'access log' if log else 'no access log'})",
                kind="satchel",
                framework="fastapi",
                target="satchel serve",
                prepare=prepare_for(config),
                env=env,
                prepare_before_start=True,
                in_quick=not log,
                path="/auth/me",
                command=(
                    sys.executable,
                    "-m",
                    "satchel.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "{port}",
                    "--strategy",
                    "jwt",
                    "--store",
                    store,
                    "--access-log" if log else "--no-access-log",
                ),
            )
        )
    return specs


def config_for_app(app: str) -> Config | None:
    for config in CONFIGS:
        if app.startswith(f"satchel {config.label}"):
            return config
    return None


async def _cleanup_redis(settings: Settings) -> int:
    """Delete every key this run created (bounded scan)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(settings.redis_url)
    removed = 0
    try:
        deadline = time.monotonic() + 60
        batch: list[bytes] = []
        async for key in client.scan_iter(match=f"{settings.redis_prefix}*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                removed += await client.unlink(*batch)
                batch.clear()
            if time.monotonic() > deadline:
                break
        if batch:
            removed += await client.unlink(*batch)
    finally:
        await client.aclose()
    return removed


def cleanup(settings: Settings) -> None:
    from benchmarks import services

    # Best effort: a later run uses a new prefix anyway.
    with contextlib.suppress(Exception):
        run_async(asyncio.wait_for(_cleanup_redis(settings), 90))
    services.cleanup(settings)
