"""The warm path: ``qremote worker``, a long-lived process that delivers for
``qmail-remote`` (CONTRACT section 7).

- :mod:`qremote.worker.protocol`: the wire format between a client and the worker.
- :mod:`qremote.worker.server`: the worker itself (socket, privileges, one thread a
  delivery, drain on SIGTERM).
- :mod:`qremote.worker.status`: deliveries in flight and counts, and the client of
  ``qremote status``.

The clients (the C ``qmail-remote`` and its pure-Python twin) live in
:mod:`qremote.client`.
"""
