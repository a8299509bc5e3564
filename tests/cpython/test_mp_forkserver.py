"""``_test_multiprocessing`` against ``workhorse.processes``, start method ``forkserver``."""

from __future__ import annotations

import pytest

from ._leaks import test_left_nothing_behind
from ._mp_suite import install

pytestmark = pytest.mark.timeout(120)

install(globals(), "forkserver")

__all__ = ["test_left_nothing_behind"]
