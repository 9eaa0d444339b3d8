"""A run: read the clouds (observe), decide (the pure core), carry out (execute) and report,
one flow per command (run)."""
