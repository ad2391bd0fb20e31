"""Control files: reading, parsing, validating (``qremote check``), writing safely,
and the compiled cache. Pure parsers; the I/O edge is :mod:`qremote.control.config`."""
