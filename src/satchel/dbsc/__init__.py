"""Device Bound Session Credentials (W3C WebAppSec DBSC, level 1) for the cookie transport.

A browser that supports DBSC answers the ``Secure-Session-Registration`` header of a cookie
sign-in by creating a key pair for the session and proving possession of it to the
registration endpoint; from then on the session also needs a short-lived *bound cookie*,
which only a fresh proof signed with that key renews (``docs/dbsc.md``). Browsers without
DBSC ignore the header and keep working as before.

:mod:`.headers` speaks the protocol's header fields, :mod:`.proof` verifies the proof JWTs,
:mod:`.cookie` mints and checks the bound cookie, :mod:`.binding` runs registration, refresh
and the per-request check.
"""
