"""DPoP through the Django integration: its token endpoint binds, its views check proofs."""

from __future__ import annotations

from typing import Any

from api_flows import BASE, PASSWORD
from dpop_client import wsgi_flow
from test_django import django_project, make_rig  # noqa: F401 - the fixtures


def test_dpop_bound_tokens_through_django(make_rig: Any) -> None:  # noqa: F811
    wsgi_flow(make_rig("hybrid"), BASE, PASSWORD)
