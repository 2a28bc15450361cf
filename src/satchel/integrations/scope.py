"""The ASGI vocabulary satchel's glue shares: callable types and the scope keys it writes.

:class:`~satchel.integrations.asgi.AuthMiddleware` records its findings under these keys;
the refresh logic, the FastAPI dependencies and any handler read them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The :class:`satchel.Auth` serving the request.
SCOPE_AUTH: Final = "satchel.auth"
#: The :class:`satchel.Identity`, or None for an anonymous request or a rejected credential.
SCOPE_IDENTITY: Final = "satchel.identity"
#: Name of the transport the credential came on (``"cookie"``/``"bearer"``), or None.
SCOPE_TRANSPORT: Final = "satchel.transport"
#: The :class:`satchel.errors.SatchelError` when a presented credential was rejected.
SCOPE_ERROR: Final = "satchel.auth_error"
#: Attribute of a Starlette ``app.state`` that may hold the :class:`Auth`.
STATE_KEY: Final = "satchel_auth"
