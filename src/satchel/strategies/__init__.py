"""Strategies: what a credential is (session id, signed JWT, or the hybrid of both)."""

from satchel.strategies.base import LoginContext, Strategy
from satchel.strategies.session import SessionStrategy

__all__ = ["LoginContext", "SessionStrategy", "Strategy"]
