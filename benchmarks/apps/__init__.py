"""ASGI apps served by uvicorn for the end-to-end runs, each answering ``GET /me``.

Configuration comes from environment variables set by :mod:`benchmarks.e2e` (a secret, data
paths, service URLs), so every app is importable as ``module:attribute`` by uvicorn.
"""
