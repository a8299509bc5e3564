"""TaskOptions and the validation of every pool argument (on the four pool classes and on
``with_options``), plus the progress-bar renderer."""

from __future__ import annotations

import inspect
import io
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import workhorse
from workhorse._config import PoolConfig
from workhorse._options import TaskOptions, check_progress
from workhorse._progress_bar import LineBar, ProgressBar, make_bar

Factory = Callable[..., Any]

FORK = workhorse.with_start_method("fork")
CLASSES: dict[str, Factory] = {
    "Pool": FORK.Pool,
    "ThreadPool": workhorse.ThreadPool,
    "ProcessPoolExecutor": FORK.ProcessPoolExecutor,
    "ThreadPoolExecutor": workhorse.ThreadPoolExecutor,
}

BAD_TASK_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"timeout": 0}, ValueError, "timeout"),
    ({"timeout": -1}, ValueError, "timeout"),
    ({"timeout": -math.inf}, ValueError, "timeout"),
    ({"timeout": math.nan}, ValueError, "timeout"),
    ({"timeout": "1"}, TypeError, "timeout"),
    ({"timeout": True}, TypeError, "timeout"),
    ({"retries": -1}, ValueError, "retries"),
    ({"retries": 1.5}, TypeError, "retries"),
    ({"retries": True}, TypeError, "retries"),
    ({"retries": "2"}, TypeError, "retries"),
    ({"retry_on": 3}, TypeError, "retry_on"),
    ({"retry_on": int}, TypeError, "retry_on"),
    ({"retry_on": (ValueError, "KeyError")}, TypeError, "retry_on"),
    ({"retry_on": "ValueError"}, TypeError, "retry_on"),
    ({"retry_on": ValueError("not a type")}, TypeError, "retry_on"),
]
BAD_PROGRESS: list[Any] = ["sometimes", "", 1, 0.5, object()]


def ids(case: tuple[dict[str, Any], type[Exception], str]) -> str:
    return ",".join(f"{k}={v!r}" for k, v in case[0].items())


@pytest.fixture(params=sorted(CLASSES))
def make(request: pytest.FixtureRequest) -> Factory:
    factory: Factory = CLASSES[request.param]
    return factory


@pytest.mark.parametrize("case", BAD_TASK_OPTIONS, ids=ids)
def test_task_options_reject_bad_values_naming_the_argument(
    case: tuple[dict[str, Any], type[Exception], str],
) -> None:
    options, error, name = case
    with pytest.raises(error, match=name):
        TaskOptions(**options)
    with pytest.raises(error, match=name):
        TaskOptions().updated(**options)


@pytest.mark.parametrize("case", BAD_TASK_OPTIONS, ids=ids)
def test_every_class_rejects_bad_task_options(
    make: Factory, case: tuple[dict[str, Any], type[Exception], str]
) -> None:
    options, error, name = case
    with pytest.raises(error, match=name):
        make(1, **options)


def test_with_options_rejects_bad_values_on_every_class(make: Factory) -> None:
    with make(1) as pool:
        for options, error, name in BAD_TASK_OPTIONS:
            with pytest.raises(error, match=name):
                pool.with_options(**options)
            view = pool.with_options(retries=1)
            with pytest.raises(error, match=name):
                view.with_options(**options)
        for value in BAD_PROGRESS:
            with pytest.raises(TypeError, match="progress"):
                pool.with_options(progress=value)
        with pytest.raises(TypeError):
            pool.with_options(chunksize=2)  # a constructor argument, not a per-view option
        view = pool.with_options(timeout=math.inf, retries=0, retry_on=KeyError, progress=None)
        assert view._front.options == TaskOptions(None, 0, (KeyError,))


def test_with_options_help_shows_what_an_unset_option_means(make: Factory) -> None:
    with make(1) as pool:
        shown = str(inspect.signature(pool.with_options))
    assert "object at" not in shown
    assert "timeout: 'float | None' = <the pool's>" in shown


FACES = [
    workhorse.Pool, workhorse.ThreadPool, workhorse.ProcessPoolExecutor,
    workhorse.ThreadPoolExecutor,
]  # fmt: skip


@pytest.mark.parametrize("face", FACES, ids=lambda face: face.__name__)
def test_each_extra_is_in_the_signature_with_its_real_default(face: Any) -> None:
    defaults = inspect.signature(PoolConfig.build).parameters
    shown = inspect.signature(face).parameters
    for name in ("timeout", "retries", "retry_on", "progress", "chunksize", "backend"):
        assert shown[name].kind is inspect.Parameter.KEYWORD_ONLY
        assert shown[name].default == defaults[name].default
    assert not [p for p in shown.values() if p.kind is inspect.Parameter.VAR_KEYWORD]
    with pytest.raises(
        TypeError, match=f"{face.__name__}\\(\\) got an unexpected keyword argument 'colour'"
    ):
        face(1, colour="red")


@pytest.mark.parametrize("value", [0, -1, 0.5, "12", True, 1.0])
def test_max_tasks_per_worker_must_be_a_positive_int(make: Factory, value: Any) -> None:
    with pytest.raises(ValueError, match="max_tasks_per_worker"):
        make(1, max_tasks_per_worker=value)


@pytest.mark.parametrize("value", [0, -1, 0.5, "12"])
def test_stdlib_names_of_the_task_limit_are_validated(value: Any) -> None:
    with pytest.raises(ValueError, match="maxtasksperchild"):
        FORK.Pool(1, maxtasksperchild=value)
    with pytest.raises(ValueError, match="max_tasks_per_child"):
        FORK.ProcessPoolExecutor(1, max_tasks_per_child=value)


def test_stdlib_and_workhorse_task_limits_must_agree() -> None:
    with pytest.raises(ValueError, match="not both"):
        FORK.ProcessPoolExecutor(1, max_tasks_per_child=2, max_tasks_per_worker=3)
    with pytest.raises(ValueError, match="not both"):
        FORK.Pool(1, maxtasksperchild=2, max_tasks_per_worker=3)


@pytest.mark.parametrize(
    ("value", "error"),
    [(0, ValueError), (-1, ValueError), ("fast", TypeError), (1.5, TypeError), (True, TypeError)],
)
def test_constructor_chunksize_is_validated(
    make: Factory, value: Any, error: type[Exception]
) -> None:
    with pytest.raises(error, match="chunksize"):
        make(1, chunksize=value)


@pytest.mark.parametrize("value", [0, -1])
def test_call_chunksize_is_validated(make: Factory, value: int) -> None:
    with make(1) as pool:
        if hasattr(pool, "imap"):
            with pytest.raises(ValueError, match=r"(?i)chunksize"):  # the stdlib's "Chunksize"
                list(pool.imap(abs, [1], value))
        else:
            with pytest.raises(ValueError, match="chunksize"):
                pool.map(abs, [1], chunksize=value)


@pytest.mark.parametrize("value", BAD_PROGRESS)
def test_progress_is_validated(make: Factory, value: Any) -> None:
    with pytest.raises(TypeError, match="progress"):
        make(1, progress=value)


@pytest.mark.parametrize("value", [None, False, True, "always", io.StringIO()])
def test_valid_progress_values(value: Any) -> None:
    assert check_progress(value) is value
    with workhorse.ThreadPoolExecutor(1, progress=value) as executor:
        assert executor.submit(abs, -1).result(timeout=10) == 1


def test_workers_and_initializer_are_validated(make: Factory) -> None:
    for workers in (0, -1):
        with pytest.raises(ValueError, match=r"greater than 0|at least 1"):
            make(workers)
    for wrong in (1.5, "2", True):
        with pytest.raises(TypeError):
            make(wrong)
    with pytest.raises(TypeError, match="initializer must be a callable"):
        make(1, initializer=3)
    with pytest.raises(TypeError, match="initargs"):
        make(1, initializer=print, initargs=5)


def test_retry_on_accepts_a_single_type_or_any_iterable_of_types() -> None:
    one: Any = KeyError
    several: Any = [KeyError, OSError]
    assert TaskOptions(retry_on=one).retry_on == (KeyError,)
    assert TaskOptions(retry_on=several).retry_on == (KeyError, OSError)
    assert TaskOptions(retry_on=()).retry_on == ()
    assert TaskOptions(retry_on=(KeyboardInterrupt,)).retry_on == (KeyboardInterrupt,)
    options = TaskOptions(retries=2, retry_on=OSError)  # type: ignore[arg-type]
    assert options.should_retry(0, ConnectionError())
    assert options.should_retry(1, ConnectionError())
    assert not options.should_retry(2, ConnectionError()), "only `retries` times"
    assert not options.should_retry(0, ValueError())
    assert not TaskOptions().should_retry(0, ValueError()), "no retries by default"


positive_timeouts = st.one_of(
    st.none(),
    st.integers(1, 10**6),
    st.floats(min_value=1e-6, max_value=1e9, allow_nan=False),
    st.just(math.inf),
)
exception_types = st.sampled_from(
    [Exception, ValueError, KeyError, OSError, workhorse.WorkerCrashed, workhorse.TaskTimeout]
)


@settings(max_examples=150, deadline=None)
@given(
    timeout=positive_timeouts,
    retries=st.integers(0, 1000),
    retry_on=st.one_of(exception_types, st.lists(exception_types, max_size=4).map(tuple)),
)
def test_valid_options_round_trip_through_task_options(
    timeout: float | None, retries: int, retry_on: Any
) -> None:
    options = TaskOptions(timeout, retries, retry_on)
    expected_timeout = None if timeout is None or math.isinf(timeout) else float(timeout)
    assert options.timeout == expected_timeout
    assert options.timeout is None or type(options.timeout) is float
    assert options.retries == retries
    assert options.retry_on == (retry_on if isinstance(retry_on, tuple) else (retry_on,))
    again = TaskOptions(options.timeout, options.retries, options.retry_on)
    assert again == options
    assert hash(again) == hash(options)
    assert options.updated() == options
    assert options.updated(retries=0).retries == 0
    assert options.updated(retries=0).timeout == options.timeout
    with pytest.raises(AttributeError):
        options.retries = 3  # type: ignore[misc]


# --- the progress-bar renderer -----------------------------------------------------------


def test_line_bar_renders_count_rate_and_eta() -> None:
    out = io.StringIO()
    bar = LineBar(out, total=10, desc="work")
    bar.update(4)
    started = bar._started
    assert bar.render(started + 2) == "work: 4/10 [40%] 2.0 tasks/s, elapsed 0:02, ETA 0:03"
    assert bar.render(started + 3725.5).startswith("work: 4/10 [40%] 0.0 tasks/s, elapsed 1:02:05")
    bar.update(6)
    assert bar.render(started + 5) == "work: 10/10 [100%] 2.0 tasks/s, elapsed 0:05"
    bar.close()
    bar.close()  # once
    text = out.getvalue()
    assert text.startswith("\rwork: 0/10 [0%]")
    assert "10/10 [100%]" in text
    assert text.endswith("\n")
    assert text.count("\n") == 1


def test_line_bar_without_a_total_or_a_rate() -> None:
    out = io.StringIO()
    bar = LineBar(out, total=None)
    assert bar.render(bar._started + 1) == "0 tasks 0.0 tasks/s, elapsed 0:01"
    bar.update(3)
    assert bar.render(bar._started + 1) == "3 tasks 3.0 tasks/s, elapsed 0:01"
    unstarted = LineBar(io.StringIO(), total=5)
    assert unstarted.render(unstarted._started + 1).endswith("ETA ?")
    empty = LineBar(io.StringIO(), total=0)
    assert "0/0 [100%]" in empty.render(empty._started + 1)


def test_line_bar_survives_a_closed_stream() -> None:
    out = io.StringIO()
    bar = LineBar(out, total=3)
    out.close()
    bar.update(3)
    bar.close()  # no error: a bar never fails the pool


def test_a_terminal_of_zero_columns_gets_the_line_bar_even_with_tqdm() -> None:
    """A fresh pty reports 0 columns (as some CI runners do): tqdm drew nothing there."""
    pytest.importorskip("tqdm")
    master, slave = os.openpty()
    try:
        assert os.get_terminal_size(slave).columns == 0
        with open(slave, "w", closefd=False) as stream:
            bar = make_bar(stream, 3, "work")
            assert bar is not None
            assert isinstance(bar._backend, LineBar)
            bar.update(3)
            bar.close()
        os.set_blocking(master, False)
        assert "work: 3/3 [100%]" in os.read(master, 4096).decode()
    finally:
        os.close(master)
        os.close(slave)


def test_make_bar_uses_tqdm_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    tqdm = pytest.importorskip("tqdm")
    out = io.StringIO()
    bar = make_bar(out, 5, "work")
    assert isinstance(bar, ProgressBar)
    assert isinstance(bar._backend, tqdm.tqdm)
    for _ in range(5):
        bar.update()
    bar.close()
    assert "5/5" in out.getvalue()
    assert "work" in out.getvalue()

    monkeypatch.setitem(sys.modules, "tqdm", None)
    plain = io.StringIO()
    fallback = make_bar(plain, 2, "work")
    assert fallback is not None
    assert isinstance(fallback._backend, LineBar)
    fallback.update()
    fallback.close(done=2)  # brings the count up to what was yielded
    assert fallback.count == 2
    assert "2/2" in plain.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_make_bar_shows_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)
    assert make_bar(False, 3) is None
    assert make_bar(None, 3) is None
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert make_bar(True, 3) is None, "stderr is not a terminal"
    always = make_bar("always", 3)
    assert always is not None
    always.close(done=3)
    assert "3/3" in sys.stderr.getvalue()  # type: ignore[union-attr]
    monkeypatch.setattr(sys, "stderr", Terminal())
    shown = make_bar(True, 3)
    assert shown is not None
    shown.update(3)
    shown.close()
    assert "3/3" in sys.stderr.getvalue()  # type: ignore[union-attr]


def test_a_bar_can_be_relabelled_as_it_goes(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("tqdm")
    out = io.StringIO()
    bar = make_bar(out, 3, "map")
    assert bar is not None
    bar.describe("map, 2 failed")
    bar.close(done=3)
    assert "map, 2 failed" in out.getvalue()
    monkeypatch.setitem(sys.modules, "tqdm", None)  # the line bar
    out = io.StringIO()
    bar = make_bar(out, 3, "map")
    assert bar is not None
    bar.update(2)
    bar.describe("map, 1 failed")
    bar.close(done=3)
    assert out.getvalue().rstrip("\n").rsplit("\r", 1)[-1].startswith("map, 1 failed: 3/3")
