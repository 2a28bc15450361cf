"""A process of the cross-process consume race: opens the store, waits for the start file,
tries to consume every token once and prints how many it won."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from satchel.stores import open_store
from satchel.stores.onetime_backends import onetime_store_for


async def main(url: str, prefix: str, schema: str, start: str, hexes: list[str]) -> None:
    backend = await open_store(url, prefix=prefix, schema=schema)
    tokens = onetime_store_for(backend)
    while not Path(start).exists():
        await asyncio.sleep(0.001)
    won = 0
    for value in hexes:
        if await tokens.consume("reset", bytes.fromhex(value), time.time()) is not None:
            won += 1
    await backend.close()
    print(won)


if __name__ == "__main__":
    url, prefix, schema, start, *hexes = sys.argv[1:]
    asyncio.run(main(url, prefix, schema, start, hexes))
