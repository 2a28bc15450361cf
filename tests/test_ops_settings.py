"""The settings added for operations do what they say: SATCHEL_JWT_SECRET signs (and other
services verify with the secret alone), the cookie name and domain reach Set-Cookie, and the
key timing reaches the key manager."""

from __future__ import annotations

import jwt as pyjwt
import pytest

from apps import Apps
from satchel.clock import system_clock
from satchel.errors import ConfigurationError, NotSupported
from satchel.keys.operator import OPERATOR_KID, OperatorKeyManager

SECRET = "an operator secret of more than 32 bytes, shared"


async def test_jwt_secret_signs_tokens_a_service_verifies_with_the_secret(make_app: Apps) -> None:
    app = await make_app(
        "sqlite",
        strategy="jwt",
        jwt_alg="HS256",
        jwt_secret=SECRET,
        users={"alice": []},
        clock=system_clock,  # PyJWT checks the times against the real clock
    )
    assert isinstance(app.auth.keys, OperatorKeyManager)
    token = await app.bearer_token("alice")
    claims = pyjwt.decode(token, SECRET, algorithms=["HS256"], audience="satchel")
    assert claims["sub"] == app.users["alice"]
    assert pyjwt.get_unverified_header(token)["kid"] == OPERATOR_KID
    me = await app.client.get("/auth/me", headers={"authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert (await app.client.get("/.well-known/jwks.json")).json() == {"keys": []}
    assert await app.auth.keys.list() == []  # nothing stored: the secret is the operator's
    with pytest.raises(NotSupported):
        await app.auth.keys.rotate()
    assert SECRET not in repr(app.auth.keys) and SECRET not in repr(app.settings)
    # A token signed with another secret is refused.
    forged = pyjwt.encode({**claims}, "x" * 40, algorithm="HS256", headers={"kid": OPERATOR_KID})
    refused = await app.client.get("/auth/me", headers={"authorization": f"Bearer {forged}"})
    assert refused.status_code == 401


async def test_a_short_jwt_secret_or_another_algorithm_is_refused(make_app: Apps) -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        await make_app.auth("memory", strategy="jwt", jwt_alg="HS256", jwt_secret="short")
    with pytest.raises(ConfigurationError, match="SATCHEL_JWT_ALG=HS256"):
        await make_app.auth("memory", strategy="jwt", jwt_secret=SECRET)


async def test_cookie_name_and_domain_reach_set_cookie(make_app: Apps) -> None:
    app = await make_app("memory", cookie_domain="example.com", users={"alice": []})
    cookie = (await app.login("alice")).headers["set-cookie"]
    assert cookie.startswith("__Secure-satchel=") and "Domain=example.com" in cookie
    named = await make_app("memory", cookie_name="__Host-app", users={"alice": []})
    assert (await named.login("alice")).headers["set-cookie"].startswith("__Host-app=")


async def test_key_timing_reaches_the_key_manager(make_app: Apps) -> None:
    auth = await make_app.auth("memory", strategy="jwt", key_publish_delay=30)
    assert auth.keys is not None
    assert auth.keys.publish_delay == 30 and auth.keys.reload_interval == 15
    with pytest.raises(ConfigurationError, match="twice the key reload interval"):
        await make_app.auth("memory", strategy="jwt", key_publish_delay=60, key_reload_interval=60)
