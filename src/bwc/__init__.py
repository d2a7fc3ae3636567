"""The ``bwc`` command: one entry point, subcommands per role."""
