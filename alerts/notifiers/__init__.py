"""One module per integration; `registry.NOTIFIERS` maps a receiver kind to its factory."""
