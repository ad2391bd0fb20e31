"""The clients ``qmail-rspawn`` runs as ``qmail-remote`` to hand deliveries to the worker.

- ``qmail-remote.c``: the compiled client (no dependencies), built by
  :func:`qremote.client.build.build_client` with the system's C compiler.
- ``pyclient.py``: the same protocol in pure Python, for hosts without a compiler
  (run as ``python -I -S pyclient.py ARGS``).

Both deliver in-process (``python -I -m qremote.remote``) when no worker takes the
delivery. Nothing here is imported on a delivery's path.
"""
