"""Pipe: objects and bytes both ways, poll() with a timeout, EOFError once the peer closed."""

from __future__ import annotations

import multiprocessing as mp
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multiprocessing.connection import Connection


def echo(conn: Connection) -> None:
    while True:
        message = conn.recv()
        if message == "bye":
            break
        conn.send({"echo": message})
    conn.send_bytes(b"raw bytes")
    conn.close()


if __name__ == "__main__":
    here, there = mp.Pipe()
    p = mp.Process(target=echo, args=(there,))
    p.start()
    there.close()  # the parent's copy of the child's end: EOF comes once the child closes
    print("poll before sending:", here.poll(0.05))
    for message in ([1, 2, 3], "text", (4.5, None)):
        here.send(message)
        print(here.recv())
    here.send("bye")
    print(here.recv_bytes())
    p.join()
    try:
        here.recv()
    except EOFError:
        print("EOFError after the child closed its end")
    here.close()
