"""The thread backend: worker threads taking slices of jobs (see :mod:`._engine`)."""
