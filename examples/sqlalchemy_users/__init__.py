"""Example: a FastAPI application whose own SQLAlchemy ``User`` table holds the accounts
satchel signs in (see docs/users.md)."""
