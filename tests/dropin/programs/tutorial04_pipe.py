"""Tutorial 4: a duplex Pipe; each end sends three items and receives three."""

from __future__ import annotations

import multiprocessing as mp
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


def other_end(conn: Connection) -> None:
    received = [conn.recv() for _ in range(3)]
    print("child received", received)
    for i in range(3):
        conn.send(f"child-{i}")
    conn.close()


if __name__ == "__main__":
    parent_conn, child_conn = mp.Pipe()
    p = mp.Process(target=other_end, args=(child_conn,))
    p.start()
    for i in range(3):
        parent_conn.send(i)
    print("parent received", [parent_conn.recv() for _ in range(3)])
    p.join()
    print("exit code", p.exitcode)
