"""The files a run keeps between runs and for its operator: the journal, the run state, the
lock, the audit log, and the safe way to write them all."""
