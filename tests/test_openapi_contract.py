"""The OpenAPI document describes the server that serves it: the cookies it really sets,
which routes answer anonymous callers, the error bodies it really sends, the request bodies
and limits it really accepts. And a client built from ``/openapi.json`` alone can sign in,
refresh and call every protected route of a real ``satchel serve``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema_rs
import pyotp
import pytest

from apps import Apps, RunningApp
from procs import SatchelServer, satchel_cli
from softauthn import SoftAuthenticator

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a different horse, stapled"


async def spec_of(app: RunningApp) -> dict[str, Any]:
    response = await app.client.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method, path, operation


# --- security schemes from the configured transports -------------------------------------------


async def test_insecure_cookies_are_named_as_the_server_sets_them(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, password=PASSWORD, cookie_secure=False)
    schemes = (await spec_of(app))["components"]["securitySchemes"]
    login = await app.client.post(
        "/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"origin": app.base_url, "sec-fetch-site": "same-origin"},
    )
    assert login.status_code == 200
    set_cookie = login.headers["set-cookie"]
    assert schemes["SessionCookie"]["name"] == "satchel_session"
    assert set_cookie.startswith("satchel_session=")
    assert schemes["RefreshCookie"]["name"] == "satchel_refresh"
    assert "__Host-" not in json.dumps(schemes)


async def test_secure_cookies_keep_their_prefixed_names(make_app: Apps) -> None:
    app = await make_app(strategy="hybrid")
    schemes = (await spec_of(app))["components"]["securitySchemes"]
    assert schemes["SessionCookie"]["name"] == "__Host-satchel"
    assert schemes["RefreshCookie"]["name"] == "__Secure-satchel-refresh"


async def test_only_the_configured_transports_are_schemes(make_app: Apps) -> None:
    bearer_only = await spec_of(await make_app(transports="bearer", dpop="off"))
    schemes = bearer_only["components"]["securitySchemes"]
    assert set(schemes) == {"BearerToken", "OAuth2Password"}
    me = bearer_only["paths"]["/auth/me"]["get"]["security"]
    assert me == [{"BearerToken": []}, {"OAuth2Password": []}]
    # With DPoP on (the default), the DPoP scheme of RFC 9449 is one more way in.
    with_dpop = await spec_of(await make_app(transports="bearer"))
    assert with_dpop["components"]["securitySchemes"]["DPoPToken"]["scheme"] == "DPoP"
    assert {"DPoPToken": []} in with_dpop["paths"]["/auth/me"]["get"]["security"]
    # The password flow says where a client gets its token.
    flow = schemes["OAuth2Password"]["flows"]["password"]
    assert flow["tokenUrl"] == flow["refreshUrl"] == "/auth/token"
    assert bearer_only["paths"]["/auth/refresh"]["post"]["security"] == [{}]

    cookie_only = await spec_of(await make_app(transports="cookie"))
    assert set(cookie_only["components"]["securitySchemes"]) == {"SessionCookie", "RefreshCookie"}


async def test_the_document_follows_the_auth_the_app_runs(make_app: Apps) -> None:
    from fastapi import FastAPI

    from satchel.auth import Auth
    from satchel.config.settings import Settings
    from satchel.integrations.fastapi import install
    from satchel.transports.cookie import CookieTransport

    # Before it starts, an app knows its transports from its settings...
    early = FastAPI()
    install(early, Settings(store="memory://", cookie_secure=False, transports="cookie"))
    schemes = early.openapi()["components"]["securitySchemes"]
    assert schemes["SessionCookie"]["name"] == "satchel_session"
    assert "BearerToken" not in schemes

    # ... and an Auth built by hand, with its own cookie, is described as it is.
    built = await make_app.auth()
    custom = Auth(
        strategy=built.strategy,
        transports=[CookieTransport(name="__Host-app")],
        users=built.users,
        csrf=built.csrf,
        clock=built.clock,
    )
    app = FastAPI()
    install(app, auth=custom)
    assert app.openapi()["components"]["securitySchemes"]["SessionCookie"]["name"] == "__Host-app"


async def test_routes_that_answer_anonymous_callers_say_so(make_app: Apps) -> None:
    app = await make_app()
    spec = await spec_of(app)
    for method, path in (("post", "/auth/logout"), ("get", "/auth/csrf")):
        security = spec["paths"][path][method]["security"]
        assert {} in security, (path, security)
        assert {"SessionCookie": []} in security and {"BearerToken": []} in security
    anonymous_logout = await app.client.post("/auth/logout")
    assert anonymous_logout.status_code == 204
    assert (await app.client.get("/auth/csrf")).status_code == 200
    # ... and the ones that do not, do not.
    for method, path in (("get", "/auth/me"), ("get", "/auth/sessions")):
        assert {} not in spec["paths"][path][method]["security"]
        assert (await app.client.request(method, path)).status_code == 401


# --- error bodies and limits -------------------------------------------------------------------


async def test_every_documented_error_is_an_error_body(make_app: Apps) -> None:
    spec = await spec_of(await make_app())
    text = json.dumps(spec)
    assert "HTTPValidationError" not in text and "ValidationError" not in spec["components"].get(
        "schemas", {}
    )
    for method, path, operation in operations(spec):
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            schema = response["content"]["application/json"]["schema"]
            assert {"error", "detail"} <= set(schema["required"]), (method, path, status)


async def test_a_long_session_id_is_404_like_any_unknown_one(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, password=PASSWORD)
    headers = {"authorization": f"Bearer {await app.bearer_token('alice')}"}
    for session_id in ("x" * 300, "nope"):
        response = await app.client.delete(f"/auth/sessions/{session_id}", headers=headers)
        assert response.status_code == 404, response.text
        assert response.json() == {"error": "not_found", "detail": "No such session."}


async def test_refresh_declares_its_body(make_app: Apps) -> None:
    spec = await spec_of(await make_app(strategy="hybrid"))
    body = spec["paths"]["/auth/refresh"]["post"]["requestBody"]
    assert body["required"] is False  # browsers send the refresh cookie instead
    for media in ("application/json", "application/x-www-form-urlencoded"):
        schema = body["content"][media]["schema"]
        assert schema["properties"]["refresh_token"]["type"] == "string"
        assert schema["required"] == ["refresh_token"]
    ok = spec["paths"]["/auth/refresh"]["post"]["responses"]["200"]["content"]
    assert "TokenOut" in json.dumps(ok)


def limits(schema: dict[str, Any], name: str) -> tuple[int | None, int | None]:
    field = schema["properties"][name]
    return field.get("minLength"), field.get("maxLength")


async def test_bodies_state_the_limits_the_server_enforces(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, password=PASSWORD)
    spec = await spec_of(app)
    login = spec["paths"]["/auth/login"]["post"]["requestBody"]["content"]["application/json"]
    assert limits(login["schema"], "username") == (1, 150)
    assert limits(login["schema"], "password") == (1, 1024)
    token = spec["paths"]["/auth/token"]["post"]["requestBody"]["content"]
    form = token["application/x-www-form-urlencoded"]["schema"]
    assert form["properties"]["grant_type"]["enum"] == ["password", "refresh_token"]
    assert limits(form, "username") == (1, 150)
    assert limits(form, "password") == (1, 1024)
    ref = spec["paths"]["/auth/password"]["post"]["requestBody"]["content"]["application/json"]
    change = spec["components"]["schemas"][ref["schema"]["$ref"].rsplit("/", 1)[1]]
    assert limits(change, "current_password") == (1, 1024)
    assert limits(change, "new_password") == (8, 1024)

    # Below the minimum: refused as the schema says, not taken for a wrong password.
    same_origin = {"origin": app.base_url, "sec-fetch-site": "same-origin"}
    empty = await app.client.post(
        "/auth/login", json={"username": "alice", "password": ""}, headers=same_origin
    )
    assert empty.status_code == 422 and empty.json()["error"] == "invalid_request"
    # Above the maximum: 413 before hashing.
    long = await app.client.post(
        "/auth/login", json={"username": "alice", "password": "p" * 1025}, headers=same_origin
    )
    assert long.status_code == 413
    # Within them: an answer about the credentials.
    wrong = await app.client.post(
        "/auth/login", json={"username": "alice", "password": "p"}, headers=same_origin
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_login"


# --- a client generated from /openapi.json alone ----------------------------------------------


class SpecClient:
    """What a generated client knows: the document, and nothing else about the server."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(base_url=base, timeout=10)
        self.spec: dict[str, Any] = self.http.get("/openapi.json").json()
        schemes = self.spec["components"]["securitySchemes"]
        self.bearer = next(
            name
            for name, scheme in schemes.items()
            if scheme["type"] == "http" and scheme["scheme"].lower() == "bearer"
        )
        self.token: str | None = None
        self.refresh_token: str | None = None

    def find(self, wanted: str, media: str) -> tuple[str, str, dict[str, Any]]:
        """The operation whose ``media`` request body has a property ``wanted``."""
        for method, path, operation in operations(self.spec):
            content = operation.get("requestBody", {}).get("content", {})
            schema = self.resolve(content.get(media, {}).get("schema", {}))
            if wanted in schema.get("properties", {}):
                return method, path, schema
        raise AssertionError(f"no operation takes {wanted} as {media}")

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        if ref is None:
            return schema
        resolved: dict[str, Any] = self.spec
        for part in ref.removeprefix("#/").split("/"):
            resolved = resolved[part]
        return resolved

    def check(self, operation: dict[str, Any], response: httpx.Response) -> None:
        """The response's status is documented and its body fits the documented schema."""
        documented = operation["responses"]
        assert str(response.status_code) in documented, (response.status_code, response.text)
        content = documented[str(response.status_code)].get("content", {})
        if "application/json" in content:
            schema = {
                **content["application/json"]["schema"],
                "components": self.spec["components"],
            }
            jsonschema_rs.validator_for(schema).validate(response.json())

    def call(
        self, method: str, path: str, path_params: dict[str, str] | None = None, **options: Any
    ) -> httpx.Response:
        operation = self.spec["paths"][path][method]
        headers = dict(options.pop("headers", {}))
        if {self.bearer: []} in operation.get("security", ()) and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = path
        for parameter in operation.get("parameters", ()):
            if parameter["in"] == "path":
                url = url.replace(
                    "{" + parameter["name"] + "}", (path_params or {})[parameter["name"]]
                )
        response = self.http.request(method.upper(), url, headers=headers, **options)
        self.check(operation, response)
        return response

    def grant(self, **fields: str) -> None:
        """The password or refresh grant at the token URL of the document's password flow."""
        flows = [
            scheme["flows"]["password"]
            for scheme in self.spec["components"]["securitySchemes"].values()
            if scheme["type"] == "oauth2"
        ]
        url = flows[0]["tokenUrl" if fields["grant_type"] == "password" else "refreshUrl"]
        form = self.spec["paths"][url]["post"]["requestBody"]["content"]
        schema = form["application/x-www-form-urlencoded"]["schema"]
        assert fields["grant_type"] in schema["properties"]["grant_type"]["enum"]
        response = self.call("post", url, data=fields)
        assert response.status_code == 200, response.text
        self.token = response.json()["access_token"]
        self.refresh_token = response.json().get("refresh_token")


@pytest.fixture(scope="module")
def hybrid_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SatchelServer]:
    tmp = tmp_path_factory.mktemp("generated")
    env = {"SATCHEL_STORE": f"sqlite:///{tmp / 'g.db'}", "SATCHEL_STRATEGY": "hybrid"}
    added = satchel_cli(["users", "add", "alice", "--password-stdin"], env, PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    running = SatchelServer(env, "generated").start()
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


@pytest.mark.slow
def test_a_client_built_from_the_document_uses_every_protected_route(
    hybrid_server: SatchelServer,
) -> None:
    client = SpecClient(hybrid_server.url)
    client.grant(grant_type="password", username="alice", password=PASSWORD)
    assert client.refresh_token
    # Refresh at the operation that takes a refresh_token in a JSON body (POST /auth/refresh).
    method, path, _ = client.find("refresh_token", "application/json")
    refreshed = client.call(method, path, json={"refresh_token": client.refresh_token})
    assert refreshed.status_code == 200, refreshed.text
    client.token = refreshed.json()["access_token"]
    # ... and with the refresh grant at the token endpoint.
    client.grant(grant_type="refresh_token", refresh_token=refreshed.json()["refresh_token"])

    protected = [
        (method, path, operation)
        for method, path, operation in operations(client.spec)
        if {client.bearer: []} in operation.get("security", ())
    ]
    called = set()
    # Every protected GET, then the routes that change state, the one ending the session last.
    for method, path, _ in protected:
        if method == "get":
            response = client.call(method, path)
            assert response.status_code == 200, (path, response.text)
            called.add((method, path))
    response = client.call("post", "/auth/sessions/revoke-others")
    assert response.status_code == 200
    called.add(("post", "/auth/sessions/revoke-others"))
    # Second factors: an authenticator app, recovery codes, a passkey (a software
    # authenticator answering for the server's default origin), a step-up.
    setup = client.call("post", "/auth/mfa/totp/setup", json={})
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    code = pyotp.TOTP(secret).now()
    confirmed = client.call("post", "/auth/mfa/totp/confirm", json={"code": code})
    assert confirmed.status_code == 200 and len(confirmed.json()["recovery_codes"]) == 10
    assert client.call("post", "/auth/mfa/recovery-codes", json={}).status_code == 200
    assert client.call("delete", "/auth/mfa/totp").status_code == 204
    device = SoftAuthenticator(f"http://localhost:{hybrid_server.port}")
    options = client.call("post", "/auth/passkeys/register/options", json={}).json()
    added = client.call(
        "post", "/auth/passkeys/register", json={"credential": device.create(options)}
    )
    assert added.status_code == 201, added.text
    key = {"passkey_id": added.json()["id"]}
    renamed = client.call("post", "/auth/passkeys/{passkey_id}/name", key, json={"name": "Laptop"})
    assert renamed.status_code == 204
    options = client.call("post", "/auth/passkeys/reauthenticate/options", json={}).json()
    stepped = client.call("post", "/auth/reauthenticate", json={"passkey": device.get(options)})
    assert stepped.status_code == 200, stepped.text
    client.token = stepped.json()["access_token"]  # carries the renewed auth_time
    assert client.call("delete", "/auth/passkeys/{passkey_id}", key).status_code == 204
    called.update(
        {
            ("post", "/auth/mfa/totp/setup"),
            ("post", "/auth/mfa/totp/confirm"),
            ("post", "/auth/mfa/recovery-codes"),
            ("delete", "/auth/mfa/totp"),
            ("post", "/auth/passkeys/register/options"),
            ("post", "/auth/passkeys/register"),
            ("post", "/auth/passkeys/{passkey_id}/name"),
            ("post", "/auth/passkeys/reauthenticate/options"),
            ("post", "/auth/reauthenticate"),
            ("delete", "/auth/passkeys/{passkey_id}"),
        }
    )
    # The account routes a signed-in caller uses (202: the mail goes out in the background).
    response = client.call("post", "/auth/email/verify/resend")
    assert response.status_code == 202, response.text
    called.add(("post", "/auth/email/verify/resend"))
    response = client.call(
        "post", "/auth/email/change", json={"email": "alice@example.com", "password": PASSWORD}
    )
    assert response.status_code == 202, response.text
    called.add(("post", "/auth/email/change"))
    change = client.find("new_password", "application/json")
    response = client.call(
        change[0], change[1], json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    assert response.status_code == 200, response.text
    client.token = response.json()["access_token"]  # every earlier credential has ended
    called.add(change[:2])
    sessions = client.call("get", "/auth/sessions").json()
    current = next(s["id"] for s in sessions if s["current"])
    client.grant(grant_type="password", username="alice", password=NEW_PASSWORD)
    response = client.call("delete", "/auth/sessions/{session_id}", {"session_id": current})
    assert response.status_code == 204
    called.add(("delete", "/auth/sessions/{session_id}"))
    response = client.call("post", "/auth/logout")
    assert response.status_code == 204
    called.add(("post", "/auth/logout"))
    assert client.call("get", "/auth/me").status_code == 401
    assert called == {(method, path) for method, path, _ in protected}
