"""qremote: a drop-in qmail-remote with routes, local IP pools, failover and TLS."""

__version__ = "0.1.0"
