"""Strategies: what a credential is (session id, signed JWT, or the hybrid of both)."""

from satchel.strategies.base import LoginContext, Strategy

__all__ = ["LoginContext", "Strategy"]
