"""Planning a delivery: routes and smtproutes chosen (:mod:`~qremote.planning.planner`),
MX logic and DNS, this host's addresses, HELO names; ``simulate`` and ``--probe``."""
