"""``satchel keys``: list and rotate the signing keys (identifiers and dates, never material)."""

from __future__ import annotations

from typing import Annotated

import typer

from satchel.audit import safe_text
from satchel.cli.app import (
    DEFAULT_STORE,
    Command,
    StoreOption,
    check_flag,
    keys_app,
    out,
    table,
    when,
)
from satchel.cli.stores import target
from satchel.clock import system_clock


@keys_app.command("list", cls=Command)
def keys_list(ctx: typer.Context, store: StoreOption = DEFAULT_STORE) -> None:
    """List signing keys and what each does now (identifiers and dates only; never material).

    Exactly one key is "signing". The "next" key is already published and accepted by
    every node; it starts signing at the time shown. A "verifies until" key no longer signs
    but still verifies tokens it signed, until that time.
    """
    where = target(ctx, store=store)

    async def main() -> None:
        from satchel.keys.manager import KeyManager
        from satchel.keys.schedule import describe

        async with where.stores() as stores:
            keys = await KeyManager(stores.keys, system_clock).status()
        now = system_clock()
        listing = table("Signing keys", ["kid", "alg", "what it does", "created"])
        for key in keys:
            listing.add_row(safe_text(key.kid), key.alg, describe(key, now), when(key.created_at))
        out().print(listing if keys else "No signing keys.")

    where.run(main)


@keys_app.command("rotate", cls=Command)
def keys_rotate(
    ctx: typer.Context,
    overlap: Annotated[
        int,
        typer.Option(
            min=0,
            max=30 * 86_400,
            metavar="SECONDS",
            help="How long the previous key keeps verifying tokens after the new key starts "
            "signing; keep it above the token lifetime.",
        ),
    ] = 86_400,
    alg: Annotated[
        str | None,
        typer.Option(
            metavar="EdDSA|ES256|RS256|HS256",
            help="Algorithm of the new key (default: that of the newest key; for the first "
            "key, SATCHEL_JWT_ALG or EdDSA).",
            show_default=False,
        ),
    ] = None,
    now: Annotated[
        bool,
        typer.Option(
            "--now",
            help="For a compromised key: retire every current key at once (their tokens stop "
            "verifying) and sign with the new key immediately.",
        ),
    ] = False,
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Publish a new signing key; it signs once every node has had time to load it.

    Until then the current key keeps signing; afterwards it verifies only, for the overlap.
    On a store without keys this creates the first key instead, which signs at once.
    """
    if alg is not None:
        check_flag(ctx, "alg", alg, "jwt_alg")
    where = target(ctx, store=store)

    async def main() -> None:
        from satchel.keys.manager import KeyManager
        from satchel.keys.schedule import KeyRole

        async with where.stores() as stores:
            manager = KeyManager(stores.keys, system_clock, alg=alg or where.settings.jwt_alg)
            if not await manager.list():
                active = (await manager.load_or_create()).active
                out().print(
                    f"Created the first signing key {safe_text(active.kid)} ({active.alg}); "
                    "it signs now."
                )
                return
            await manager.rotate(alg=alg, overlap=overlap, immediate=now)
            statuses = await manager.status()
        signing = next(k for k in statuses if k.role is KeyRole.SIGNING)
        pending = [k for k in statuses if k.role is KeyRole.PENDING]
        if not pending:
            out().print(
                f"Rotated signing keys; {safe_text(signing.kid)} ({signing.alg}) signs now. "
                "Every other key is retired."
            )
            return
        fresh = pending[-1]
        out().print(
            f"Rotated signing keys; new key {safe_text(fresh.kid)} ({fresh.alg}) is published "
            f"and signs from {when(fresh.signs_from)} UTC. Until then "
            f"{safe_text(signing.kid)} keeps signing."
        )

    where.run(main)
