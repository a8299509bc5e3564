"""Pool workers forked from a template: ``fork``'s semantics without forking a threaded parent.

With the ``fork`` start method a child is a copy of its parent: the main script's functions
and globals are there, nothing is imported again, and a worker starts in a few milliseconds.
But a pool starts workers at any time (a replacement after a crash, a timeout, a task limit)
from its manager thread, and ``fork()`` in a process that runs other threads copies their
locks in whatever state they are: a worker can hang forever on a lock (the import lock,
``logging``'s, ``sys.stdout``'s buffer) that a thread which does not exist in the child held at
that instant. Python 3.12 warns about exactly this.

So a fork pool forks one *template* when it starts, from the thread that creates the pool,
and its first workers right after it from that thread too (what the stdlib's fork pool does
for its first workers); every later worker is forked from the template on request. The
template is single-threaded and runs only the small loop below, so no fork ever happens in a
threaded process after the pool started; workers see the modules, main-script functions and
globals as they were when the pool started (the stdlib's fork pool gives its first workers
the same) and start in a few milliseconds.

The request protocol is the forkserver's, so that multiprocessing's launch machinery works
unchanged: the parent sends ``[child_r, child_w, resource tracker fd, *fds of the process
object]`` over a Unix socket (``SCM_RIGHTS``), the template forks, writes the child's pid to
``child_w`` and, once it has reaped the child, its exit code; the parent pickles the
preparation data and the process object into ``child_r``'s pipe. The child runs
``multiprocessing.spawn._main`` on them, as a forkserver child does, except that the main
module is already in place (its ``init_main_*`` keys are dropped). :class:`TemplatePopen` is
the forkserver's ``Popen`` with its launch pointed at this template.

The template exits when its parent dies (it checks ``getppid()``) and is killed when the pool
shuts down. If it is killed from outside, the pool forks a new one from its manager thread:
that is the stdlib fork pool's risk, taken only then.
"""

from __future__ import annotations

import atexit
import io
import os
import selectors
import signal
import socket
import sys
import threading
import weakref
from multiprocessing import (
    connection,
    forkserver,
    popen_forkserver,
    reduction,
    resource_tracker,
    spawn,
    util,
)
from multiprocessing.context import set_spawning_popen
from multiprocessing.process import BaseProcess
from typing import Any

from ..._signals import ASYNC_SIGNALS

__all__ = ["TEMPLATE_NAME", "Template", "TemplatePopen", "TemplateProcess"]

#: What ``ps`` shows for a template (its command line stays the parent's).
TEMPLATE_NAME = "wh-template"
MAX_FDS = 256  # a request carries at most this many descriptors (the forkserver's limit)
PARENT_CHECK = 1.0  # seconds between two looks at whether the parent is still alive
REAP_POLL = 0.05  # without pidfds: seconds between two reaps of finished workers
_ATEXIT_IN_CHILD = sys.version_info >= (3, 13)  # what popen_fork does for fork children


class Template:
    """A single-threaded fork of this process; :meth:`connect` asks it for a new child.

    Create it in the thread that creates the pool, before that pool starts any thread.

    Example::

        template = Template()
        process = TemplateProcess(target=print, args=("hi",))
        process._wh_template = template
        process.start(); process.join()
        template.close()
    """

    def __init__(self) -> None:
        resource_tracker.ensure_running()  # forked into the template: workers share it
        self._address: str = connection.arbitrary_address("AF_UNIX")  # type: ignore[attr-defined]
        listener = socket.socket(socket.AF_UNIX)
        try:
            listener.bind(self._address)
            if not util.is_abstract_socket_namespace(self._address):
                os.chmod(self._address, 0o600)
            listener.listen()
            # What the workers' main module holds: a function of the main script defined
            # (or redefined) after this fork must travel by value (see knows()). Weakly: the
            # pool must not keep the script's objects (a queue, say) alive.
            self._main = _weak_globals(sys.modules.get("__main__"))
            parent = os.getpid()
            util._flush_std_streams()  # type: ignore[attr-defined]
            pid = os.fork()
            if pid == 0:  # the template
                code = 1
                try:
                    _serve(listener, parent)
                    code = 0
                finally:
                    os._exit(code)
        finally:
            listener.close()
        self.pid = pid
        self._reaped = False
        self._lock = threading.Lock()

    def connect(self, fds: list[int]) -> tuple[int, int]:
        """Ask for a child: returns ``(status_r, data_w)``, as the forkserver's method."""
        if len(fds) + 3 >= MAX_FDS:
            raise ValueError("too many fds")
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(self._address)
            tracker = resource_tracker.getfd()
            assert tracker is not None
            parent_r, child_w = os.pipe()
            child_r, parent_w = os.pipe()
            try:
                reduction.sendfds(client, [child_r, child_w, tracker, *fds])
            except BaseException:
                os.close(parent_r)
                os.close(parent_w)
                raise
            finally:
                os.close(child_r)
                os.close(child_w)
        return parent_r, parent_w

    def knows(self, obj: object) -> bool:
        """Whether a worker finds ``obj`` by reference: anything outside the main script,
        and main-script objects that were there, the same, when the template was forked."""
        module = getattr(obj, "__module__", None)
        if module not in ("__main__", "__mp_main__"):
            return True
        head = str(getattr(obj, "__qualname__", "")).split(".", 1)[0]
        now = getattr(sys.modules.get(module), head, None)
        then = self._main.get(head)
        return now is not None and then is not None and then() is now

    def alive(self) -> bool:
        """Whether the template still runs (and can fork workers)."""
        with self._lock:
            if self._reaped:
                return False
            try:
                pid, _ = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                pid = self.pid
            if pid == self.pid:
                self._reaped = True
            return not self._reaped

    def close(self) -> None:
        """Stop the template (its workers are not affected) and reap it. Idempotent."""
        self._main = {}
        with self._lock:
            if not self._reaped:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                    os.waitpid(self.pid, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass
                self._reaped = True
        if not util.is_abstract_socket_namespace(self._address):
            try:
                os.unlink(self._address)
            except OSError:
                pass


def _weak_globals(module: Any) -> dict[str, weakref.ref[Any]]:
    """``module``'s globals that can be weakly referenced -- its functions and classes,
    the only ones :meth:`Template.knows` asks about."""
    refs: dict[str, weakref.ref[Any]] = {}
    for name, value in (vars(module) if module is not None else {}).items():
        try:
            refs[name] = weakref.ref(value)
        except TypeError:
            pass
    return refs


class TemplatePopen(popen_forkserver.Popen):
    """The forkserver's ``Popen``, launching through the process object's template."""

    method = "fork"

    def _launch(self, process_obj: Any) -> None:
        template: Template = process_obj._wh_template
        fds: list[int] = self._fds  # type: ignore[attr-defined]
        prep_data = spawn.get_preparation_data(process_obj._name)
        # The template already has the parent's main module: running it again would be
        # spawn's behaviour, not fork's.
        prep_data.pop("init_main_from_path", None)
        prep_data.pop("init_main_from_name", None)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        self.sentinel, w = template.connect(fds)
        # As the forkserver's: the child watches this duplicate to notice our death.
        parent_w = os.dup(w)
        close: Any = util.close_fds  # type: ignore[attr-defined]
        self.finalizer = util.Finalize(self, close, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class TemplateProcess(BaseProcess):
    """A process forked from the template in its ``_wh_template`` attribute (set it before
    ``start()``). In the child, multiprocessing reports the ``fork`` start method."""

    _start_method = "fork"
    _wh_template: Template

    @staticmethod
    def _Popen(process_obj: BaseProcess) -> TemplatePopen:
        return TemplatePopen(process_obj)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_wh_template", None)  # a socket address and a lock: the parent's business
        return state


# -- inside the template ---------------------------------------------------------------


def _serve(listener: socket.socket, parent: int) -> None:
    """The template's loop: fork a child per request, report each child's exit code."""
    global _parent_name
    _parent_name = _get_name()
    _set_name(TEMPLATE_NAME)
    if hasattr(signal, "pthread_sigmask"):  # forked from a masked thread: workers must hear
        signal.pthread_sigmask(signal.SIG_UNBLOCK, ASYNC_SIGNALS)  # Ctrl-C and SIGTERM
    handlers: dict[int, Any] = {
        sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # no user handler runs in the template
    status: dict[int, int] = {}  # child pid -> the pipe its exit code goes to
    pidfds: dict[int, int] = {}
    with selectors.DefaultSelector() as selector:
        selector.register(listener, selectors.EVENT_READ)
        while os.getppid() == parent:
            timeout = PARENT_CHECK if _HAVE_PIDFD else REAP_POLL
            for key, _ in selector.select(timeout):
                if key.fileobj is listener:
                    child = _fork_child(listener, selector, status, pidfds, handlers)
                    if child is not None and _HAVE_PIDFD:
                        pidfds[child] = os.pidfd_open(child)
                        selector.register(pidfds[child], selectors.EVENT_READ, child)
                else:
                    pid = key.data
                    selector.unregister(key.fileobj)
                    os.close(pidfds.pop(pid))
                    _report(pid, os.waitpid(pid, 0)[1], status)
            if not _HAVE_PIDFD:
                _reap_all(status)


_parent_name = ""  # the template's name before it renamed itself: its children get it back


def _get_name() -> str:
    try:
        with open("/proc/self/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def _set_name(name: str) -> None:
    """Name this process in ``ps``/``top`` (Linux's ``PR_SET_NAME``; elsewhere nothing)."""
    if not name:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(15, name.encode()[:15], 0, 0, 0)  # 15: PR_SET_NAME
    except (OSError, AttributeError):
        pass


def _pidfd_available() -> bool:
    if not hasattr(os, "pidfd_open"):
        return False
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:  # an old kernel
        return False
    return True


_HAVE_PIDFD = _pidfd_available()


def _report(pid: int, wait_status: int, status: dict[int, int]) -> None:
    fd = status.pop(pid, None)
    if fd is None:
        return
    try:
        forkserver.write_signed(fd, os.waitstatus_to_exitcode(wait_status))
    except BrokenPipeError:
        pass  # the parent no longer waits for it
    finally:
        os.close(fd)


def _reap_all(status: dict[int, int]) -> None:
    while True:
        try:
            pid, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _report(pid, wait_status, status)


def _fork_child(
    listener: socket.socket,
    selector: selectors.BaseSelector,
    status: dict[int, int],
    pidfds: dict[int, int],
    handlers: dict[int, Any],
) -> int | None:
    """Serve one request; returns the new child's pid (None if the request was broken)."""
    try:
        with listener.accept()[0] as request:
            fds = reduction.recvfds(request, MAX_FDS + 1)
    except OSError:
        return None  # the parent gave up on this request
    if len(fds) < 3:
        for fd in fds:
            os.close(fd)
        return None
    child_r, child_w, tracker_fd, *inherited = fds
    pid = os.fork()
    if pid == 0:
        unused = [listener.fileno(), child_w, *status.values(), *pidfds.values()]
        _run_child(child_r, tracker_fd, inherited, unused, selector, handlers)
    try:
        forkserver.write_signed(child_w, pid)
    except BrokenPipeError:
        pass
    status[pid] = child_w
    for fd in (child_r, tracker_fd, *inherited):
        os.close(fd)
    return pid


def _run_child(
    child_r: int,
    tracker_fd: int,
    inherited: list[int],
    unused: list[int],
    selector: selectors.BaseSelector,
    handlers: dict[int, Any],
) -> None:
    """In a new worker: become the process the parent pickled, then exit with its code."""
    code = 1
    try:
        selector.close()
        if _parent_name:
            _set_name(_parent_name)
        for fd in unused:
            os.close(fd)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)  # a fork child keeps its parent's handlers
        tracker: Any = resource_tracker._resource_tracker
        if tracker._fd is not None and tracker._fd != tracker_fd:
            os.close(tracker._fd)
        tracker._fd = tracker_fd
        forkserver._forkserver._inherited_fds = inherited  # type: ignore[attr-defined]
        if _ATEXIT_IN_CHILD:
            atexit._clear()
            atexit.register(util._exit_function)  # type: ignore[attr-defined]
        code = spawn._main(child_r, os.dup(child_r))
    except BaseException:
        sys.excepthook(*sys.exc_info())
        sys.stderr.flush()
    finally:
        if _ATEXIT_IN_CHILD:
            atexit._run_exitfuncs()
        os._exit(code)
