"""Class as a thread.

Subclass ``workhorse.threads.Thread`` and override ``run()``, exactly as with ``threading``;
two instances print 3 lines each under their default names.
"""

from __future__ import annotations

import time

from workhorse._tour import say

import workhorse


class Counter(workhorse.threads.Thread):
    """A thread whose work is its ``run()`` method."""

    def run(self) -> None:
        for i in range(3):
            say(f"{self.name}: line {i}")
            time.sleep(0.05)


def main() -> None:
    threads = [Counter(), Counter()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    say("joined " + ", ".join(t.name for t in threads))


if __name__ == "__main__":
    main()
