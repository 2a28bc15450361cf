"""DPoP (RFC 9449): sender-constrained access and refresh tokens.

:mod:`~satchel.dpop.proof` parses and verifies a proof (pure), :mod:`~satchel.dpop.nonce`
issues and checks server nonces (pure), :mod:`~satchel.dpop.binding` decides what a request's
scheme and its token's binding allow (pure), and :mod:`~satchel.dpop.guard` adds the I/O: the
replay cache shared through the store, audit events. docs/dpop.md says how to use it.
"""
