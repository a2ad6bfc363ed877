"""The run core, with no pytest: one session from workspace to record, the bench that runs
a whole set of them (clients, simulator, spool, judging, the run record), and the spool."""
