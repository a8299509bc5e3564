"""A ThreadPoolExecutor whose work is submitted, then the script ends without shutdown().

The stdlib joins the executor's threads at interpreter exit, so every task runs and prints.
"""

# stdout: sorted
import threading
import time
from concurrent.futures import ThreadPoolExecutor

print_lock = threading.Lock()


def slow_hello(n: int) -> None:
    time.sleep(0.1)  # the task is still running when the main thread reaches the end
    with print_lock:
        print("task", n, "finished")


executor = ThreadPoolExecutor(max_workers=2)
for n in range(4):
    executor.submit(slow_hello, n)
print("main thread reached the end")
