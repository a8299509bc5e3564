"""workhorse: processes, threads, queues, locks and pools that never hang.

(The public API is assembled here once every module exists.)
"""
