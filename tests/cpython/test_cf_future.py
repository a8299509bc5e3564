"""``test.test_concurrent_futures.test_future`` against workhorse's executors (3.13+)."""

from __future__ import annotations

import pytest

from ._cf_suite import install
from ._leaks import test_left_nothing_behind

pytestmark = pytest.mark.timeout(90)

install(globals(), "future")

__all__ = ["test_left_nothing_behind"]
