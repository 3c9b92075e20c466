"""CLI: the `vigil` command, one module per command group, sharing `common`. The top layer:
it may import anything below; nothing imports it."""
