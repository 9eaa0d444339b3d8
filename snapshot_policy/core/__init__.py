"""The pure core: the vocabulary and every decision, as functions of values (no I/O, no clock,
no SDK), so each is tested in milliseconds and planning works with no cloud in reach.

One exception, on purpose: `redaction` also holds the secrets of the command being run and
masks stdout and stderr with them (`hide`, `redacted_output`), so that every layer's output
passes the same masking rules and none can forget a secret."""
