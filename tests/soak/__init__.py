"""The unified fault soak: pools, queues, pipes and lock holders under random SIGKILLs.

    python -m tests.soak --minutes 10 [--seed S]

For the given time it interleaves trials of four kinds -- each kind gets a fixed share of
the wall-clock time, whatever its trials cost -- and in every trial something is SIGKILLed
at a random instant (microseconds to milliseconds after it started working):

* ``pool``: ``ProcessPoolExecutor`` and ``Pool`` (fork, with a share of forkserver and
  spawn) running submits, maps, ``imap``/``imap_unordered`` over generators, tasks that
  raise and tasks whose results are large NumPy arrays, while a chaos thread kills busy
  workers (``_pools.py``);
* ``queue``: the producer and consumer trials of ``tests/faults/_queue_kill.py``
  (``_queues.py``);
* ``pipe``: a child sending a numbered stream, or reading one, killed mid-stream
  (``_pipes.py``);
* ``sync``: a process holding a ``Lock``/``RLock`` or a ``Semaphore`` slot, or inside
  ``Condition.wait``, ``Event`` calls or ``Barrier.wait`` (``_locks.py``, ``_waits.py``).

Every blocking call has a bound; a call past it is *hung*. Each trial checks its own
outcomes (``wrong``, ``missing``, ``duplicated``, ``hung``) and, after it, that it left no
file descriptor, thread, child process or ``/dev/shm`` name behind (``leaked``); the soak
also watches its whole process's resources (``_ledger.py``). Any problem, or a resource
that grew, makes the exit status 1. ``tests/faults/test_soak_unified.py`` runs a one-minute
version in the default suite.

Why a package of its own: the pieces existed as separate tests (``test_soak.py``,
``soak_queues.py``), each watching one subsystem in isolation; faults in one subsystem that
leave state behind (a descriptor, a thread, a segment, a dead lock holder) only show when
the others keep running in the same process for a long time.
"""
