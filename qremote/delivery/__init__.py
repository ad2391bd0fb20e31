"""Delivering: the engine, the attempt loop, the SMTP session and client, the message
stream, envelope quoting, reports, the failover memory and the worker's connection cache."""
