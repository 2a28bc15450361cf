"""auth_time and amr (RFC 8176) in every strategy: set at sign-in, kept through refresh,
renewed by a step-up on the same session, and still refused after a revocation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apps import PASSWORD, Apps
from satchel.errors import InvalidCredential
from satchel.jose import b64
from satchel.strategies.base import LoginContext

STRATEGIES = ["session", "jwt", "hybrid"]


def _b64(token: str) -> dict[str, Any]:
    """The claims of a signed token (the strategy under test has verified it)."""
    return dict(json.loads(b64.decode(token.split(".")[1])))


async def started(make_app: Apps, strategy: str) -> Any:
    auth = await make_app.auth("memory", strategy=strategy)
    await auth.users.create_user("alice", PASSWORD, [])
    return auth


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_sign_in_records_pwd_and_the_time(make_app: Apps, strategy: str) -> None:
    auth = await started(make_app, strategy)
    t0 = auth.clock()
    result = await auth.login("alice", PASSWORD)
    assert result.identity.amr == {"pwd"}
    assert result.identity.auth_time == t0
    seen = await auth.strategy.authenticate(result.credentials.access_token)
    assert seen.amr == {"pwd"} and seen.auth_time == t0
    assert seen.to_public_dict()["amr"] == ["pwd"]
    if strategy != "session":
        claims = _b64(result.credentials.access_token)
        assert claims["amr"] == ["pwd"] and claims["auth_time"] == t0


@pytest.mark.parametrize("strategy", ["jwt", "hybrid"])
async def test_refresh_keeps_the_original_auth_time_and_amr(make_app: Apps, strategy: str) -> None:
    auth = await started(make_app, strategy)
    t0 = auth.clock()
    result = await auth.login("alice", PASSWORD)
    for _ in range(3):
        auth.clock.advance(120)  # type: ignore[attr-defined]
        assert result.credentials.refresh_token is not None
        result = await auth.refresh(result.credentials.refresh_token)
        assert result.identity.auth_time == t0
        assert result.identity.amr == {"pwd"}
        claims = _b64(result.credentials.access_token)
        assert claims["auth_time"] == t0 and claims["amr"] == ["pwd"]


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_step_up_renews_auth_time_on_the_same_session(make_app: Apps, strategy: str) -> None:
    auth = await started(make_app, strategy)
    t0 = auth.clock()
    result = await auth.login("alice", PASSWORD)
    auth.clock.advance(400)  # type: ignore[attr-defined]
    t1 = auth.clock()
    renewed, issued = await auth.strategy.reauthenticated(result.identity, {"otp"})
    assert renewed.session_id == result.identity.session_id
    assert renewed.auth_time == t1 > t0
    assert renewed.amr == {"pwd", "otp", "mfa"}
    if strategy == "session":
        # The same token now reads the renewed authentication.
        assert issued is None
        seen = await auth.strategy.authenticate(result.credentials.access_token)
    else:
        assert issued is not None and issued.refresh_token is None
        seen = await auth.strategy.authenticate(issued.access_token)
        assert _b64(issued.access_token)["auth_time"] == t1
    assert seen.auth_time == t1 and seen.amr == {"pwd", "otp", "mfa"}
    if strategy in ("jwt", "hybrid"):
        # The old refresh token still works and its successors keep the renewed time.
        auth.clock.advance(60)  # type: ignore[attr-defined]
        assert result.credentials.refresh_token is not None
        refreshed = await auth.refresh(result.credentials.refresh_token)
        assert refreshed.identity.auth_time == t1
        assert refreshed.identity.amr == {"pwd", "otp", "mfa"}


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_an_ended_session_cannot_be_renewed(make_app: Apps, strategy: str) -> None:
    auth = await started(make_app, strategy)
    result = await auth.login("alice", PASSWORD)
    await auth.logout(result.identity)
    with pytest.raises(InvalidCredential):
        await auth.strategy.reauthenticated(result.identity, {"pwd"})


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_a_renewal_racing_a_revocation_is_refused(make_app: Apps, strategy: str) -> None:
    """valid_after already written, the sessions not yet ended: the renewal is refused."""
    auth = await started(make_app, strategy)
    result = await auth.login("alice", PASSWORD)
    auth.clock.advance(5)  # type: ignore[attr-defined]
    await auth.users.invalidate_credentials(result.identity.user_id)
    auth.clock.advance(5)  # type: ignore[attr-defined]
    with pytest.raises(InvalidCredential):
        await auth.strategy.reauthenticated(result.identity, {"pwd"})


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_a_renewed_token_of_an_ended_session_is_refused(
    make_app: Apps, strategy: str
) -> None:
    """A change whose valid_after predates a renewal still ends the renewed tokens: the
    sessions it ends are published by id."""
    auth = await started(make_app, strategy)
    t0 = auth.clock()
    result = await auth.login("alice", PASSWORD)
    auth.clock.advance(10)  # type: ignore[attr-defined]
    _, issued = await auth.strategy.reauthenticated(result.identity, {"pwd"})
    token = issued.access_token if issued is not None else result.credentials.access_token
    assert (await auth.strategy.authenticate(token)).auth_time == t0 + 10
    user = await auth.users.get(result.identity.user_id)
    user.valid_after = t0 + 5  # computed before the renewal, applied after it
    await auth.users.store.update_user(user)
    await auth.strategy.user_changed(user)
    with pytest.raises(InvalidCredential):
        await auth.strategy.authenticate(token)


async def test_login_context_amr_reaches_the_session(make_app: Apps) -> None:
    auth = await started(make_app, "session")
    user = await auth.users.get_by_name("alice")
    result = await auth.issue_login(user, LoginContext(amr=frozenset({"swk", "mfa"})))
    seen = await auth.strategy.authenticate(result.credentials.access_token)
    assert seen.amr == {"swk", "mfa"}


async def test_password_change_keeps_the_methods_and_adds_pwd(make_app: Apps) -> None:
    auth = await started(make_app, "hybrid")
    user = await auth.users.get_by_name("alice")
    result = await auth.issue_login(user, LoginContext(amr=frozenset({"otp", "pwd", "mfa"})))
    changed = await auth.change_password(result.identity, PASSWORD, "another long passphrase 9")
    assert changed.identity.amr == {"otp", "pwd", "mfa"}
