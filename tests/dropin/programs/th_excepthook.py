"""threading.excepthook: a custom hook sees a thread's uncaught exception; the default
hook prints the traceback on stderr (compared by shape).
"""

# stderr: traceback
from __future__ import annotations

import threading


def explode(value: str) -> None:
    raise ValueError(f"cannot handle {value!r}")


def hook(args: threading.ExceptHookArgs) -> None:
    name = args.thread.name if args.thread is not None else None
    print("hook:", args.exc_type.__name__, args.exc_value, "in", name)


if __name__ == "__main__":
    original = threading.excepthook
    threading.excepthook = hook
    t = threading.Thread(target=explode, args=("x",), name="custom")
    t.start()
    t.join()
    threading.excepthook = original
    t = threading.Thread(target=explode, args=("y",), name="default")
    t.start()
    t.join()
    print("main thread carries on")
