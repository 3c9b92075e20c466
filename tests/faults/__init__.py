"""Fault injection with real processes: `vigil run` killed, its store restarted, its source and
receivers failing, two daemons racing; each scenario asserts 0 lost and 0 doubled and prints a
line of figures (see harness.py for how both are counted).

The config-reload scenario (issue 12, point 7) is test_reload.py: SIGHUP with a bad config,
then a good one, under open incidents.
"""
