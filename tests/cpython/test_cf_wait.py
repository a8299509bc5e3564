"""``test.test_concurrent_futures.test_wait`` against workhorse's executors (3.13+)."""

from __future__ import annotations

import pytest

from ._cf_suite import install
from ._leaks import test_left_nothing_behind

pytestmark = pytest.mark.timeout(90)

install(globals(), "wait")

__all__ = ["test_left_nothing_behind"]
