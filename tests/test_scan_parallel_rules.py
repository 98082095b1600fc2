"""The worker pool's rules (`scan/parallel.py`), each one a user depends on without seeing it:
files are read in the forked workers and never in the calling process; every worker started takes
part; Ctrl-C stops the workers rather than waiting for them; the main process sleeps while they
read; a large batch never deadlocks with a worker writing large results; batches are cut by their
documented rule; and the worker's side of the pipes speaks the documented framing.

Expected values come from the rule as documented, from sizes and counts the test chose, and from
process ids the operating system gave.
"""

from __future__ import annotations

import collections
import os
import pickle
import random
import selectors
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import pytest

from provguard.scan import parallel
from provguard.scan.engine import Context, Task
from provguard.scan.known import KnownIndex
from provguard.scan.model import Coverage, ScanResult
from provguard.scan.progress import Progress
from provguard.scan.readers import Options
from provguard.scan.walk import Entry, EntryState

CTX = Context(KnownIndex([]), None, Options())


def _task(name: str, size: int = 1) -> Task:
    return Task(Entry(Path(name), name, EntryState.FILE, size=size))


def _sized(sizes: list[int]) -> list[Task]:
    return [_task(f"f{i}", size) for i, size in enumerate(sizes)]


def _listed(task: Task, ctx: Context) -> ScanResult:
    """A stand-in for `scan_task` in the workers: the task's name, nothing read."""
    return ScanResult((), (), (Coverage(str(task.entry.path), "raw", 1, 1),))


def _by_pid(task: Task, ctx: Context) -> ScanResult:
    """A stand-in for `scan_task` that says which process read the task."""
    return ScanResult((), (), (Coverage(str(os.getpid()), "raw", 1, 1),))


def _count_forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The pids of the workers forked from here on (counted in the parent only)."""
    real, forked = os.fork, []

    def fork() -> int:
        pid = real()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(parallel.os, "fork", fork)
    return forked


# --- where files are read ----------------------------------------------------------------------


def test_files_are_read_in_the_workers_never_in_the_calling_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The point of the workers: the calling process only hands out work. A fork whose parent
    and child swapped roles would read files in the caller (and end it); so would a pool that
    gave up on its workers after one fork failed."""
    caller = os.getpid()

    def guarded(task: Task, ctx: Context) -> ScanResult:
        if os.getpid() == caller:
            raise AssertionError("a file was read in the calling process")
        return _by_pid(task, ctx)

    monkeypatch.setattr(parallel, "scan_task", guarded)
    forked = _count_forks(monkeypatch)
    taken, results = parallel.run(iter(_sized([1] * 40)), CTX, 2)
    assert len(taken) == len(results) == 40
    assert {int(r.coverage[0].path) for r in results} <= set(forked)
    assert len(forked) == 2

    # the second fork fails: the one worker forked reads everything
    real, calls = parallel.os.fork, []

    def second_fails() -> int:
        calls.append(1)
        if len(calls) == 2:
            raise OSError(11, "Resource temporarily unavailable")
        return real()

    monkeypatch.setattr(parallel.os, "fork", second_fails)
    forked.clear()
    taken, results = parallel.run(iter(_sized([1] * 40)), CTX, 2)
    assert len(taken) == 40
    assert {int(r.coverage[0].path) for r in results} == set(forked)
    assert len(forked) == 1


def test_every_worker_started_reads_files_and_none_is_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three workers, each busy long enough that the next batch goes to another: all three
    read files, and no batch is lost (a worker that broke at its start would lose what it was
    given, or be given nothing)."""

    def slow(task: Task, ctx: Context) -> ScanResult:
        time.sleep(0.005)
        return _by_pid(task, ctx)

    monkeypatch.setattr(parallel, "scan_task", slow)
    forked = _count_forks(monkeypatch)
    pool = parallel._Pool(CTX, Progress.off())
    assert pool.run(iter(_sized([1] * 60)), 3)
    assert pool.lost == []
    assert sorted(pool.results) == list(range(60))
    assert {int(r.coverage[0].path) for r in pool.results.values()} == set(forked)
    assert len(forked) == 3


def test_what_needs_no_second_process_forks_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One file with --jobs 2, or any number with the default of one job, is read here: a
    worker would cost a fork and gain nothing."""
    monkeypatch.setattr(parallel, "scan_task", _listed)
    forked = _count_forks(monkeypatch)
    _taken, results = parallel.run(iter(_sized([5])), CTX, 2)
    assert [r.coverage[0].path for r in results] == ["f0"]
    for i in range(3):
        (tmp_path / f"f{i}.bin").write_bytes(b"\x00" * 10)
    parallel.scan_paths([tmp_path], KnownIndex([]))
    assert forked == []


def test_each_file_whose_worker_died_is_retried_in_one_new_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Five files that each kill their worker: two workers for the pool, then one worker per
    file for its retry (a retry with two would fork one that gets nothing)."""

    def die(task: Task, ctx: Context) -> ScanResult:
        os._exit(9)

    monkeypatch.setattr(parallel, "scan_task", die)
    forked = _count_forks(monkeypatch)
    _taken, results = parallel.run(iter(_sized([1] * 5)), CTX, 2)
    assert len(results) == 5
    assert all(r.unchecked for r in results)
    assert len(forked) == 2 + 5


def test_when_every_worker_is_gone_the_rest_of_the_walk_is_kept_in_order_as_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both workers end at once; the walk goes on after they are gone: every task it still
    finds is taken, in order, and lost (then retried alone), never dropped."""
    monkeypatch.setattr(parallel._Pool, "_serve", lambda self, tasks, out: 1)
    tasks = _sized([1] * 100)

    def walk() -> Iterator[Task]:
        yield from tasks[: parallel.STEP]
        time.sleep(0.3)  # both workers have ended by now
        yield from tasks[parallel.STEP :]

    pool = parallel._Pool(CTX, Progress.off())
    assert pool.run(walk(), 2)
    assert pool.tasks == tasks
    assert sorted(pool.lost) == list(range(100))
    assert pool.results == {}


# --- stopping and waiting ----------------------------------------------------------------------


def test_ctrl_c_during_the_walk_stops_the_workers_rather_than_wait_for_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C reaches the main process while a worker is in the middle of a batch: the
    interrupt comes through, the worker is ended at once (it writes no file read after it) and
    reaped (no process is left behind)."""
    marks = tmp_path / "read"
    marks.mkdir()

    def slow(task: Task, ctx: Context) -> ScanResult:
        time.sleep(0.5)
        (marks / task.entry.display).write_text("read", encoding="utf-8")
        return _listed(task, ctx)

    monkeypatch.setattr(parallel, "scan_task", slow)

    def walk() -> Iterator[Task]:
        yield from _sized([1] * parallel.STEP)  # taken and handed out before the interrupt
        raise KeyboardInterrupt

    pool = parallel._Pool(CTX, Progress.off())
    with pytest.raises(KeyboardInterrupt):
        pool.run(walk(), 2)
    assert len(pool.batches) == 1  # a worker held the first files when the interrupt came
    time.sleep(0.6)  # a worker still running would have written its first mark by now
    assert sorted(p.name for p in marks.iterdir()) == []
    for worker in pool.workers:
        with pytest.raises(ChildProcessError):
            os.waitpid(worker.pid, os.WNOHANG)


def test_the_main_process_sleeps_while_the_workers_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the walk is over the main process waits in `select` without a timeout: a loop that
    polled would take a core from the workers (on two cores, half of them)."""

    def slow(task: Task, ctx: Context) -> ScanResult:
        time.sleep(0.1)
        return _listed(task, ctx)

    monkeypatch.setattr(parallel, "scan_task", slow)
    wall, cpu = time.monotonic(), time.process_time()  # process_time: this process only
    _taken, results = parallel.run(iter(_sized([1] * 20)), CTX, 2)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    assert len(results) == 20
    assert wall >= 1.0  # 20 files of 0.1 s on two workers
    assert cpu < 0.15 * wall


def test_a_large_batch_never_deadlocks_with_a_worker_writing_large_results(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches and results each larger than a pipe holds: the main process must not block
    writing a worker's next batch while that worker blocks writing its results back."""
    big = "x" * (1 << 20)

    def echo(task: Task, ctx: Context) -> ScanResult:
        return ScanResult((), (), (Coverage(str(task.entry.path), "raw", 1, 1),))

    monkeypatch.setattr(parallel, "scan_task", echo)
    # each task a batch of its own (its size alone reaches the share left per batch)
    tasks = [_task(f"{i}/{big}", parallel.BATCH_BYTES) for i in range(8)]

    def hung(signum: int, frame: FrameType | None) -> None:
        raise TimeoutError("the pool is deadlocked")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(60)
    try:
        _taken, results = parallel.run(iter(tasks), CTX, 2)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert [r.coverage[0].path for r in results] == [str(t.entry.path) for t in tasks]


# --- how work is cut ---------------------------------------------------------------------------


def _check_batch_rule(sizes: list[int], jobs: int, cut: list[tuple[int, ...]]) -> None:
    """The documented rule: a batch ends at the first file that brings it to
    min(BATCH_BYTES, left_bytes // (4 * jobs)) bytes or min(BATCH_FILES, left_files // (4 * jobs))
    files, left counted from the batch's first file."""
    parts = 4 * jobs
    assert [i for batch in cut for i in batch] == list(range(len(sizes)))
    start = 0
    for batch in cut:
        left_bytes, left_files = sum(sizes[start:]), len(sizes) - start
        want_bytes = min(parallel.BATCH_BYTES, left_bytes // parts)
        want_files = min(parallel.BATCH_FILES, left_files // parts)
        reached = [
            sum(sizes[start : start + n]) >= want_bytes or n >= want_files
            for n in range(1, len(batch) + 1)
        ]
        assert reached[-1], (sizes, jobs, batch)
        assert not any(reached[:-1]), (sizes, jobs, batch)
        start += len(batch)


def test_batches_follow_their_rule_for_any_sizes() -> None:
    generator = random.Random(20261203)
    for _ in range(300):
        count = generator.randrange(1, 300)
        top = generator.choice([3, 50, 5000, 3 << 20])
        sizes = [generator.randrange(0, top) for _ in range(count)]
        jobs = generator.randrange(1, 5)
        _check_batch_rule(sizes, jobs, parallel.batches(range(count), _sized(sizes), jobs))


def test_batches_by_hand() -> None:
    """Worked by hand from the rule. One job (a quarter of what is left per batch), 8 files of
    10 bytes: 80 // 4 = 20 bytes, reached by 2 files; then 6 files left, 6 // 4 = 1 file each.
    40 files of 1 byte then 1 of 100: 140 // 4 = 35 bytes and 41 // 4 = 10 files: 10 files;
    then 130 // 4 = 32 bytes and 31 // 4 = 7 files: 7; then 123 // 4 = 30 and 24 // 4 = 6..."""
    assert parallel.batches(range(8), _sized([10] * 8), 1) == [
        (0, 1),
        (2,),
        (3,),
        (4,),
        (5,),
        (6,),
        (7,),
    ]
    sizes = [1] * 40 + [100]
    cut = parallel.batches(range(41), _sized(sizes), 1)
    assert [len(b) for b in cut[:3]] == [10, 7, 6]
    # three jobs (a twelfth per batch), 13 files: 13 // 12 = 1 file is reached by each file
    assert parallel.batches(range(13), _sized([10] * 12 + [1000]), 3) == [(i,) for i in range(13)]
    # bytes reached before files: 1 job, 16 files, the first of 100 bytes: 115 // 4 = 28 bytes
    # is reached by the first file alone, 16 // 4 = 4 files would not have been
    sizes = [100] + [1] * 15
    assert parallel.batches(range(16), _sized(sizes), 1)[0] == (0,)


def test_while_walking_a_batch_is_cut_when_it_reaches_batch_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first look at the walk takes STEP files and cuts them into batches as they fill:
    at exactly BATCH_BYTES a batch is full, and each batch counts its own bytes from 0 (also
    after the files found so far went to an idle worker)."""
    monkeypatch.setattr(parallel, "scan_task", _listed)
    monkeypatch.setattr(parallel, "BATCH_BYTES", 1000)
    monkeypatch.setattr(parallel, "STEP", 16)
    # f0+f1 = 1000: full; f2+f3+f4 = 500+499+1 = 1000: full; f5..f15 (11 bytes) go to the third
    # worker, idle; the next look: f16+f17+f18 = 500+499+1: full again
    sizes = [500, 500, 500, 499, 1] + [1] * 11 + [500, 499, 1] + [1] * 21
    pool = parallel._Pool(CTX, Progress.off())
    assert pool.run(iter(_sized(sizes)), 3)
    assert pool.batches[:4] == [(0, 1), (2, 3, 4), tuple(range(5, 16)), (16, 17, 18)]
    assert sorted(i for b in pool.batches for i in b) == list(range(len(sizes)))


def test_a_worker_is_given_at_most_held_batches_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files larger than BATCH_BYTES are a batch each: the first hand-out gives each of two
    workers HELD batches and keeps the rest for whichever is done first."""
    monkeypatch.setattr(parallel, "scan_task", _listed)
    pool = parallel._Pool(CTX, Progress.off())
    held: list[list[int]] = []
    real_give = pool._give

    def give(live: list[parallel._Worker], selector: selectors.BaseSelector, walking: bool) -> None:
        real_give(live, selector, walking)
        held.append([len(w.held) for w in pool.workers])

    monkeypatch.setattr(pool, "_give", give)
    assert pool.run(iter(_sized([parallel.BATCH_BYTES] * 40)), 2)
    assert held[0] == [parallel.HELD, parallel.HELD] == [2, 2]
    assert sorted(pool.results) == list(range(40))


def test_when_the_walk_ends_what_is_left_is_cut_for_the_workers_alive(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One worker, eight files of one byte found before the first hand-out: cut for one job
    (see test_batches_by_hand), not for two."""
    monkeypatch.setattr(parallel, "scan_task", _listed)
    pool = parallel._Pool(CTX, Progress.off())
    assert pool.run(iter(_sized([1] * 8)), 1)
    assert pool.batches == [(0, 1), (2,), (3,), (4,), (5,), (6,), (7,)]


# --- progress ----------------------------------------------------------------------------------


def test_progress_counts_an_empty_file_as_no_bytes_and_a_file_in_three_spans_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "SPLIT", 4096)
    monkeypatch.setattr(parallel, "WINDOW", 1024)
    (tmp_path / "big.bin").write_bytes(os.urandom(9000))  # 3 spans with 3 jobs
    (tmp_path / "empty.bin").write_bytes(b"")
    (tmp_path / "small.bin").write_bytes(os.urandom(10))
    counted = Progress(None)
    result = parallel.scan_paths([tmp_path], KnownIndex([]), jobs=3, progress=counted)
    assert [c.size for c in result.coverage] == [9000, 0, 10]
    assert (counted.total_files, counted.files) == (3, 3)
    assert (counted.total_bytes, counted.bytes) == (9010, 9010)


# --- the pipes ---------------------------------------------------------------------------------


def _frame(obj: object) -> bytes:
    data = pickle.dumps(obj)
    return len(data).to_bytes(8, "little") + data


def _unframe(raw: bytes) -> list[object]:
    out = []
    while raw:
        size = int.from_bytes(raw[:8], "little")
        out.append(pickle.loads(raw[8 : 8 + size]))  # noqa: S301 - written by the test's own call
        raw = raw[8 + size :]
    return out


def _drain(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_worker_answers_each_batch_with_its_number_and_one_result_per_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's loop, run here: framed batches in (8-byte little-endian length, pickle),
    framed (number, results) out, each task read with the pool's context (the known keys,
    the allowlist, the options); 0 when its pipe ends between two batches."""

    def listed_with_the_pools_context(task: Task, ctx: Context) -> ScanResult:
        if ctx is not CTX:
            raise AssertionError("a task read without the pool's context")
        return _listed(task, ctx)

    monkeypatch.setattr(parallel, "scan_task", listed_with_the_pools_context)
    pool = parallel._Pool(CTX, Progress.off())
    tasks_in, tasks_out = os.pipe()
    results_in, results_out = os.pipe()
    os.write(tasks_out, _frame((0, _sized([1, 1]))) + _frame((7, [_task("g")])))
    os.close(tasks_out)
    code = pool._serve(tasks_in, results_out)
    os.close(results_out)
    answers = _unframe(_drain(results_in))
    os.close(tasks_in)
    os.close(results_in)
    assert code == 0
    assert [(n, [r.coverage[0].path for r in found]) for n, found in answers] == [  # type: ignore[misc]
        (0, ["f0", "f1"]),
        (7, ["g"]),
    ]


def test_a_worker_whose_pipe_is_cut_inside_a_batch_ends_with_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "scan_task", _listed)
    pool = parallel._Pool(CTX, Progress.off())
    tasks_in, tasks_out = os.pipe()
    results_in, results_out = os.pipe()
    os.write(tasks_out, _frame((0, _sized([1])))[:-3])  # the main process died mid-write
    os.close(tasks_out)
    assert pool._serve(tasks_in, results_out) == 1
    os.close(results_out)
    assert _drain(results_in) == b""
    os.close(tasks_in)
    os.close(results_in)


def test_read_returns_exactly_what_was_asked_across_writes() -> None:
    """`_read`: the size asked for, however the writer cut it; b"" at the pipe's end before
    any byte; EOFError at its end inside the size asked for."""
    read_end, write_end = os.pipe()

    def writer() -> None:
        for piece in (b"abc", b"defg", b"hij"):
            os.write(write_end, piece)
            time.sleep(0.02)
        os.close(write_end)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert parallel._read(read_end, 8) == b"abcdefgh"
        with pytest.raises(EOFError):
            parallel._read(read_end, 5)  # "ij" then the end
        assert parallel._read(read_end, 4) == b""
    finally:
        thread.join()
        os.close(read_end)


def test_a_dead_worker_is_forgotten_with_both_pipes_and_what_it_held_is_lost() -> None:
    """Its result pipe ends while its task pipe still waits to be written: both leave the
    selector and are closed, and the tasks of the batches it held are lost (to be retried)."""
    pool = parallel._Pool(CTX, Progress.off())
    pool.tasks = _sized([1] * 5)
    pool.batches = [(0, 1), (2,), (3, 4)]
    tasks_in, tasks_out = os.pipe()
    results_in, results_out = os.pipe()
    os.close(results_out)  # the worker died
    worker = parallel._Worker(os.getpid(), tasks_out, results_in)
    worker.held = collections.deque([0, 2])
    worker.outgoing += b"more to send"
    with selectors.DefaultSelector() as selector:
        selector.register(results_in, selectors.EVENT_READ, worker)
        selector.register(tasks_out, selectors.EVENT_WRITE, worker)
        pool._receive(worker, selector)
        assert dict(selector.get_map()) == {}
    assert (worker.tasks, worker.results) == (-1, -1)
    assert list(worker.held) == []
    assert pool.lost == [0, 1, 3, 4]
    for fd in (tasks_out, results_in):
        with pytest.raises(OSError, match="Bad file descriptor"):
            os.fstat(fd)
    os.close(tasks_in)
