"""workhorse's side-by-side benchmark suite; run it with ``python bench/run.py`` (see README)."""
