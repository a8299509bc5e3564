"""A script without ``if __name__ == "__main__":`` starting a Process with a lambda target.

Fine with the stdlib's default start method on Linux (fork): the child runs the lambda.
"""

from multiprocessing import Process

p = Process(target=lambda: print("hi from the lambda"))
p.start()
p.join()
print("exit code:", p.exitcode)
