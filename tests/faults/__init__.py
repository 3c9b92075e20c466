"""Fault injection with real processes: `vigil run` killed, its store restarted, its source and
receivers failing, two daemons racing; each scenario asserts 0 lost and 0 doubled and prints a
line of figures (see harness.py for how both are counted).

Slot for the config-reload scenarios (issue 12, point 7): `Daemon.reload()` sends SIGHUP and
`World.config()` / `World.overrides` build the good or bad config to write over
`Daemon.config_path` before it; a `test_reload.py` here can then assert with `World.audit()`
that a reload drops no tick and loses or doubles no message.
"""
