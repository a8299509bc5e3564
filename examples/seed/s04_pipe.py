"""Pipe.

A duplex pipe joins two processes and both ends read and write: the left end sends 0..2 and then
receives 3 items, the right end receives 3 items and then sends 0..2.
"""

from __future__ import annotations

from workhorse._tour import say

import workhorse
from workhorse import Connection


def left(conn: Connection) -> None:
    """Send first, then receive."""
    for i in range(3):
        conn.send(i)
        say(f"left sent {i}")
    for _ in range(3):
        say(f"left received {conn.recv()}")
    conn.close()


def right(conn: Connection) -> None:
    """Receive first, then send."""
    for _ in range(3):
        say(f"right received {conn.recv()}")
    for i in range(3):
        conn.send(i)
        say(f"right sent {i}")
    conn.close()


def main() -> None:
    left_end, right_end = workhorse.Pipe()  # duplex=True: each end can send and receive
    procs = [
        workhorse.Process(target=left, args=(left_end,)),
        workhorse.Process(target=right, args=(right_end,)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    say(f"exit codes: {[p.exitcode for p in procs]}")


if __name__ == "__main__":
    main()
