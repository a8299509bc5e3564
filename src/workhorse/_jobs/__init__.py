"""The jobs the ``workhorse`` command runs: ``map`` (a function over a file's records, with a
resumable journal) and ``status`` (what a journal holds)."""
