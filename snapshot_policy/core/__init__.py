"""The pure core: the vocabulary and every decision, as functions of values (no I/O, no clock,
no SDK), so each is tested in milliseconds and planning works with no cloud in reach."""
