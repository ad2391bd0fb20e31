"""qconsole: the Textual operator console of qremote (routes, routemap, simulation)."""
