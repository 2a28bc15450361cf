"""DPoP through the Flask integration: its token endpoint binds, its views check proofs."""

from __future__ import annotations

from typing import Any

from api_flows import BASE, PASSWORD
from dpop_client import wsgi_flow
from test_flask import make_rig  # noqa: F401 - the fixture


def test_dpop_bound_tokens_through_flask(make_rig: Any) -> None:  # noqa: F811
    wsgi_flow(make_rig("jwt"), BASE, PASSWORD)
    wsgi_flow(make_rig("session"), BASE, PASSWORD)
