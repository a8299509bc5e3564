"""CPython's ``Lib/test/_test_multiprocessing.py``, run against ``workhorse.processes``.

How the substitution reaches every use:

* The test bodies use the module global ``multiprocessing`` (``TestWait``,
  ``TestSimpleQueue`` call ``multiprocessing.Process``, ``multiprocessing.Pipe``; the
  generated ``setUpModule`` calls ``multiprocessing.set_start_method``): that global is
  replaced by a stand-in module (``_substitute.Standin``) whose public names are
  workhorse's where workhorse has them; submodules (``multiprocessing.process``, ``util``,
  ``connection``, ``managers``, ``dummy``) fall through to the real package.
* ``ProcessesMixin`` and ``ManagerMixin`` copied ``multiprocessing.Process``, ``.Queue``,
  ... into class attributes when the module was imported: those attributes are rebound to
  workhorse's (wrapped the same way, ``staticmethod`` or not). ``ManagerMixin``'s other
  attributes are properties of ``cls.manager = multiprocessing.Manager()``, which goes
  through the stand-in.
* Children started with spawn or forkserver re-import the module that defines the test
  class whose method is their target -- the ``test_mp_<method>`` module calling
  :func:`install` -- so the patch is applied at import time, in the parent and in every
  child, and applying it twice changes nothing.

Which classes run: the public-behaviour classes the issue names, each mapped to CPython's
class in :data:`PROCESSES` (type ``processes``), :data:`MANAGER` (type ``manager``) and
:data:`PLAIN` (plain ``unittest.TestCase`` classes). "Manager" is read as the behaviour of
``Manager()`` objects used with workhorse processes: the ``manager`` variants of the named
primitive classes, the manager-only ``_TestContainers`` (``list``, ``dict``,
``Namespace``), ``_TestManagerRestart`` (both variants) and ``TestSyncManagerTypes``.
``_TestMyManager`` and ``_TestRemoteManager`` are left out: they test subclasses of
``multiprocessing.managers.BaseManager``, which workhorse does not replace. The
``threads`` type (``multiprocessing.dummy``) is not run: ``workhorse.threads`` is checked
with ``lock_tests`` instead.
"""

from __future__ import annotations

import multiprocessing
import unittest
from multiprocessing import forkserver, resource_sharer
from typing import Any

import test._test_multiprocessing as cpython

import workhorse.processes

from ._substitute import BASELINE, provided, recording, standin

# issue's name -> CPython base class, for type "processes" (-> WithProcessesTest<X>)
PROCESSES = {
    "Process": "_TestProcess",
    "Queue": "_TestQueue",
    "Lock": "_TestLock",
    "Semaphore": "_TestSemaphore",
    "Condition": "_TestCondition",
    "Event": "_TestEvent",
    "Barrier": "_TestBarrier",
    "Connection": "_TestConnection",
    "Pool": "_TestPool",
    "Poll": "_TestPoll",
    "PoolWorkerLifetime": "_TestPoolWorkerLifetime",
    "Manager": "_TestManagerRestart",
}
# "Manager": these bases with type "manager" (-> WithManagerTest<X>)
MANAGER = (
    "_TestQueue",
    "_TestLock",
    "_TestSemaphore",
    "_TestCondition",
    "_TestEvent",
    "_TestBarrier",
    "_TestPool",
    "_TestContainers",
    "_TestManagerRestart",
)
# plain TestCase classes
PLAIN = {"Wait": "TestWait", "SimpleQueue": "TestSimpleQueue", "Manager": "TestSyncManagerTypes"}


def class_names() -> list[str]:
    """The names of the generated classes this harness runs."""
    names = ["WithProcesses" + base[1:] for base in PROCESSES.values()]
    names += ["WithManager" + base[1:] for base in MANAGER]
    return names + list(PLAIN.values())


def _patch_mixin(mixin: type) -> None:
    # Only the attributes that are copies of a stdlib name: not ManagerMixin's properties
    # (`manager.Queue` ...) nor its `Pool` classmethod, nor `connection` or `TYPE`.
    ours = provided(multiprocessing, workhorse.processes)
    for name, value in list(vars(mixin).items()):
        wrap = isinstance(value, staticmethod)
        stdlib = getattr(multiprocessing, name, None)
        if name not in multiprocessing.__all__ or (value.__func__ if wrap else value) is not stdlib:
            continue
        if name in ours:
            new = ours[name]
        elif wrap:
            new = recording("multiprocessing", name, value.__func__)
        else:
            continue
        setattr(mixin, name, staticmethod(new) if wrap else new)


def _patch() -> None:
    if BASELINE or cpython.__dict__.get("_workhorse_patched"):
        return
    cpython.multiprocessing = standin(multiprocessing, workhorse.processes)
    _patch_mixin(cpython.ProcessesMixin)
    _patch_mixin(cpython.ManagerMixin)
    cpython._workhorse_patched = True


def install(namespace: dict[str, Any], start_method: str) -> None:
    """Define the selected test classes, ``setUpModule`` and ``tearDownModule`` there."""
    _patch()
    generated: dict[str, Any] = {"__name__": namespace["__name__"]}
    cpython.install_tests_in_module_dict(generated, start_method)
    for name in class_names():
        cls = generated[name]
        assert issubclass(cls, unittest.TestCase), name
        namespace[name] = cls
    set_up_module, tear_down_module = generated["setUpModule"], generated["tearDownModule"]
    saved: list[list[str]] = []

    def setUpModule() -> None:
        # CPython preloads the module that holds the forkserver tests into the forkserver
        # ('test.test_multiprocessing_forkserver', a module until 3.12), so that its
        # children need not import _test_multiprocessing each (~0.3 s): here that is this
        # harness module (test_many_processes starts 100 children).
        saved[:] = [list(getattr(forkserver._forkserver, "_preload_modules", None) or [])]
        cpython.PRELOAD = ["__main__", namespace["__name__"]]
        set_up_module()

    def tearDownModule() -> None:
        # Its tearDownModule removes multiprocessing's temporary directory, where the
        # resource sharer's socket lives: the sharer, still running, would then hand no fd
        # to anyone for the rest of the session (tests/test_pipe.py's timed out).
        resource_sharer.stop()
        try:
            tear_down_module()
        finally:  # the rest of the suite gets the preload list workhorse set up
            multiprocessing.set_forkserver_preload(saved[0] if saved else ["__main__"])

    namespace["setUpModule"] = setUpModule
    namespace["tearDownModule"] = tearDownModule
