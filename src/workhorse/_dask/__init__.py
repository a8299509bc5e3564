"""The Dask backend (see workhorse._dask._context)."""
