"""`python -m monitor.cli` runs the `vigil` command."""

from monitor.cli.main import main

main()
