"""The process backend: one manager thread per pool and a pipe per worker process (the
data-flow diagram and the invariants are atop :mod:`._core`)."""
