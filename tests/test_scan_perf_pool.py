"""The scan's worker processes (`parallel`): forked workers take batches of files from one queue,
so the results are the same as one process's, in the same order, and a worker that dies loses
only the batch it held (issue 10: "one file's failure never loses another's result")."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from provguard.cli import main
from provguard.scan import parallel
from provguard.scan.engine import Context, Task
from provguard.scan.known import KnownIndex
from provguard.scan.model import Coverage, ScanResult
from provguard.scan.progress import Progress
from provguard.scan.readers import Options
from provguard.scan.walk import Entry, EntryState


def _scan(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, dict[str, object]]:
    code = main(["scan", "--quiet", "--format", "json", *map(str, args)])
    return code, json.loads(capsys.readouterr().out)


def test_two_workers_report_what_one_process_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for i in range(300):
        folder = tmp_path / f"d{i % 7}"
        folder.mkdir(exist_ok=True)
        (folder / f"f{i:03d}.bin").write_bytes(os.urandom(100 + 37 * i))
    one = _scan(capsys, tmp_path, "--jobs", "1")
    for jobs in ("2", "3"):
        assert _scan(capsys, tmp_path, "--jobs", jobs) == one
    coverage = one[1]["coverage"]
    assert isinstance(coverage, list)
    assert len(coverage) == 300


def test_a_dying_worker_loses_only_its_own_file_among_many(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from provguard.scan import engine, readers  # noqa: PLC0415

    real = readers.read_bytes

    def crash(data: bytes, path: str, *args: object, **kwargs: object) -> object:
        if path.endswith("f150.bin"):
            os._exit(9)  # the worker dies without a word, in the middle of its batch
        return real(data, path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine, "read_bytes", crash)  # inherited by the forked workers
    for i in range(300):
        (tmp_path / f"f{i:03d}.bin").write_bytes(os.urandom(200))
    code, report = _scan(capsys, tmp_path, "--jobs", "2")
    assert code == 2
    coverage = report["coverage"]
    assert isinstance(coverage, list)
    assert [Path(c["path"]).name for c in coverage] == [f"f{i:03d}.bin" for i in range(300)]
    unchecked = [Path(c["path"]).name for c in coverage if c["state"] == "unchecked"]
    assert unchecked == ["f150.bin"]
    assert [u["reason"] for u in report["unchecked"]] == [  # type: ignore[attr-defined]
        "the worker process reading it died (out of memory?): not checked"
    ]


def _listed(task: Task, ctx: Context) -> ScanResult:
    name = str(task.entry.path)
    return ScanResult((), (), (Coverage(name, "raw", 1, 1),))


def _tasks(count: int, name: str = "f{}") -> list[Task]:
    return [
        Task(Entry(Path(name.format(i)), name.format(i), EntryState.FILE, size=1))
        for i in range(count)
    ]


def test_twenty_thousand_tasks_are_each_done_once_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "scan_task", _listed)
    tasks = _tasks(20_000)
    taken, results = parallel.run(iter(tasks), Context(KnownIndex([]), None, Options()), 2)
    assert taken == tasks
    assert [r.coverage[0].path for r in results] == [f"f{i}" for i in range(20_000)]


def test_batches_larger_than_a_pipe_holds_reach_the_worker_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A batch of long paths (here 1.3 MB, a pipe holds 64 kB) is written as the worker reads
    it, without blocking the main process, and arrives whole."""
    monkeypatch.setattr(parallel, "scan_task", _listed)
    tasks = _tasks(130, "d/" + "x" * 10_000 + "/f{}")
    taken, results = parallel.run(iter(tasks), Context(KnownIndex([]), None, Options()), 2)
    assert [r.coverage[0].path for r in results] == [str(t.entry.path) for t in tasks]
    assert taken == tasks


def test_workers_read_the_first_files_while_the_walk_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The walk is not waited for: results come back before it has found its last file."""
    import time  # noqa: PLC0415

    monkeypatch.setattr(parallel, "scan_task", _listed)
    events: list[str] = []

    class Watched(Progress):
        def advance(self, file_done: bool, size: int) -> None:
            events.append("done")
            super().advance(file_done, size)

    def walk() -> Iterator[Task]:
        for task in _tasks(200):
            time.sleep(0.002)  # a walk over a slow disk
            events.append("found")
            yield task

    taken, results = parallel.run(
        walk(), Context(KnownIndex([]), None, Options()), 2, Watched(None)
    )
    assert len(taken) == len(results) == 200
    assert events.count("done") == 200
    last_found = len(events) - 1 - events[::-1].index("found")
    assert events.index("done") < last_found / 2  # the first half of the walk overlaps reading


def test_an_idle_worker_gets_the_files_found_so_far(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers start on the first files found, not when a full batch (64) has been found; the
    batches then fill up while the walk outpaces the workers."""
    monkeypatch.setattr(parallel, "scan_task", _listed)
    pool = parallel._Pool(Context(KnownIndex([]), None, Options()), Progress.off())
    pool.run(iter(_tasks(2000)), 2)
    assert 0 < len(pool.batches[0]) < parallel.BATCH_FILES
    assert [i for batch in pool.batches for i in batch] == list(range(2000))
    assert max(len(batch) for batch in pool.batches) == parallel.BATCH_FILES


def test_when_every_worker_dies_the_rest_of_the_walk_is_lost_not_an_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The walk goes on without workers: what it finds is lost (each is then retried alone, and
    reported unchecked when it kills that worker too), never dropped and never an error."""

    def die(task: Task, ctx: Context) -> ScanResult:
        os._exit(9)

    monkeypatch.setattr(parallel, "scan_task", die)
    tasks = _tasks(300)
    pool = parallel._Pool(Context(KnownIndex([]), None, Options()), Progress.off())
    pool.run(iter(tasks), 2)
    assert pool.tasks == tasks
    assert sorted(pool.lost) == list(range(300))
    assert pool.results == {}
    taken, results = parallel.run(iter(tasks[:5]), Context(KnownIndex([]), None, Options()), 2)
    assert taken == tasks[:5]
    assert [r.unchecked[0].reason for r in results] == [
        "the worker process reading it died (out of memory?): not checked"
    ] * 5


@pytest.mark.parametrize(("files", "jobs"), [(400, 2), (1000, 3), (37, 2)])
def test_batches_shrink_so_that_the_workers_end_together(files: int, jobs: int) -> None:
    """Each batch holds at most a (4 * jobs)-th of the files left (and never more than
    BATCH_FILES), so the last ones are single files; the order is kept."""
    tasks = _tasks(files)
    groups = parallel.batches(range(files), tasks, jobs)
    assert [i for batch in groups for i in batch] == list(range(files))
    left = files
    for batch in groups:
        assert len(batch) == max(1, min(parallel.BATCH_FILES, left // (4 * jobs)))
        left -= len(batch)
    assert len(groups[-1]) == 1


def test_a_file_split_across_workers_counts_once_in_the_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raw file over SPLIT is read as spans by several workers: the progress counts it as one
    file of its whole size, done when its last span is."""
    monkeypatch.setattr(parallel, "SPLIT", 4096)
    monkeypatch.setattr(parallel, "WINDOW", 1024)
    sizes = {"big.bin": 10_000, "small.bin": 300, "zbig.bin": 5_000}
    for name, size in sizes.items():
        (tmp_path / name).write_bytes(os.urandom(size))
    counted: list[tuple[bool, int]] = []

    class Watched(Progress):
        def advance(self, file_done: bool, size: int) -> None:
            counted.append((file_done, size))
            super().advance(file_done, size)

    watched = Watched(None)
    result = parallel.scan_paths([tmp_path], KnownIndex([]), jobs=2, progress=watched)
    assert (watched.total_files, watched.total_bytes) == (3, sum(sizes.values()))
    assert (watched.files, watched.bytes) == (3, sum(sizes.values()))
    assert not watched.walking
    # each large file is two spans, the first of whole windows covering half the file or more;
    # only the second ends the file
    firsts = [math.ceil(math.ceil(size / 2) / 1024) * 1024 for size in (10_000, 5_000)]
    assert firsts == [5120, 3072]
    assert sorted(size for done, size in counted if not done) == sorted(firsts)
    assert sorted(size for done, size in counted if done) == sorted(
        [300, 10_000 - firsts[0], 5_000 - firsts[1]]
    )
    assert [c.size for c in result.coverage] == [10_000, 300, 5_000]
    assert [c.examined for c in result.coverage] == [10_000, 300, 5_000]


def test_when_no_worker_can_be_forked_the_files_are_read_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Out of processes (fork fails, or the second pipe cannot be made): the scan is not lost,
    it runs in the main process, and no descriptor is left open."""
    for i in range(5):
        (tmp_path / f"f{i}.bin").write_bytes(os.urandom(100))
    one = parallel.scan_paths([tmp_path], KnownIndex([]), jobs=1)
    before = set(os.listdir("/proc/self/fd"))

    def no_fork() -> int:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(parallel.os, "fork", no_fork)
    counted = Progress(None)
    assert parallel.scan_paths([tmp_path], KnownIndex([]), jobs=2, progress=counted) == one
    # each file counted once, though the walk had begun before the fork failed
    assert (counted.total_files, counted.files, counted.total_bytes) == (5, 5, 500)
    real_pipe, made = os.pipe, []

    def second_fails() -> tuple[int, int]:
        if made:
            raise OSError(24, "Too many open files")
        made.append(1)
        return real_pipe()

    monkeypatch.setattr(parallel.os, "pipe", second_fails)
    assert parallel.scan_paths([tmp_path], KnownIndex([]), jobs=2) == one
    assert set(os.listdir("/proc/self/fd")) == before
    # the default is one process: no fork is tried at all
    assert parallel.scan_paths([tmp_path], KnownIndex([])) == one


def test_every_worker_keeps_working_and_no_task_is_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "scan_task", _listed)
    pool = parallel._Pool(Context(KnownIndex([]), None, Options()), Progress.off())
    assert pool.run(iter(_tasks(500)), 3)
    assert len(pool.workers) == 3
    assert pool.lost == []
    assert sorted(pool.results) == list(range(500))


def test_no_files_found_names_the_paths(tmp_path: Path) -> None:
    from provguard.errors import InputError  # noqa: PLC0415

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(InputError) as error:
        parallel.scan_paths([tmp_path / "a", tmp_path / "b"], KnownIndex([]), jobs=2)
    assert (error.value.message, error.value.path) == (
        "no files found",
        f"{tmp_path / 'a'}, {tmp_path / 'b'}",
    )


def test_default_jobs_is_the_cores_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda pid: {3})
    assert parallel.default_jobs() == 1
    monkeypatch.delattr(parallel.os, "sched_getaffinity")  # not Linux: the CPU count
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: 3)
    assert parallel.default_jobs() == 3
    monkeypatch.setattr(parallel.os, "cpu_count", lambda: None)  # unknown: one
    assert parallel.default_jobs() == 1


def test_only_a_plain_file_over_split_is_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parallel, "SPLIT", 1000)
    monkeypatch.setattr(parallel, "WINDOW", 256)

    def task(name: str, size: int) -> Task:
        path = tmp_path / name
        path.write_bytes(os.urandom(size))
        return Task(Entry(path, name, EntryState.FILE, size=size))

    at_limit, small, over = task("at.bin", 1000), task("small.bin", 10), task("over.bin", 1001)
    assert parallel.split_task(at_limit, 2) == [at_limit]
    assert parallel.split_task(small, 2) == [small]
    assert parallel.split_task(over, 1) == [over]
    assert [t.span for t in parallel.split_task(over, 2)] == [(0, 512), (512, 1001)]
