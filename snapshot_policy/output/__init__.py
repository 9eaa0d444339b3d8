"""What the tool writes for people and for later: plan text and JSON, saved plans, reports,
simulations, live progress and the log."""
