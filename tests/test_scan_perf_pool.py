"""The scan's worker processes (`parallel`): forked workers take batches of files from one queue,
so the results are the same as one process's, in the same order, and a worker that dies loses
only the batch it held (issue 10: "one file's failure never loses another's result")."""

from __future__ import annotations

import json
import os
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


def test_more_batches_than_the_queue_pipe_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    """20,000 batch numbers (80 kB) do not fit in a pipe (64 kB): the queue is fed as the workers
    take from it, and every batch is done once."""

    def scan_task(task: Task, ctx: Context) -> ScanResult:
        name = str(task.entry.path)
        return ScanResult((), (), (Coverage(name, "raw", 1, 1),))

    monkeypatch.setattr(parallel, "scan_task", scan_task)
    tasks = [Task(Entry(Path(f"f{i}"), f"f{i}", EntryState.FILE, size=1)) for i in range(20_000)]
    results: list[ScanResult | None] = [None] * len(tasks)
    pool = parallel._Pool(tasks, Context(KnownIndex([]), None, Options()), results, Progress.off())
    lost = pool.run([(i,) for i in range(len(tasks))], 2)
    assert lost == []
    assert [r.coverage[0].path if r else None for r in results] == [f"f{i}" for i in range(20_000)]


def test_a_queue_nobody_reads_any_more_ends_the_round() -> None:
    """When every worker has died, feeding the rest of the queue fails (a broken pipe): the round
    ends with those batches not done (each is retried alone), not with an error."""
    tasks = [Task(Entry(Path("f"), "f", EntryState.FILE, size=1))]
    pool = parallel._Pool(tasks, Context(KnownIndex([]), None, Options()), [None], Progress.off())
    read_end, pool.queue = os.pipe()
    os.close(read_end)  # no worker left to read it
    assert pool._collect([(0,)], []) == set()
    assert pool.queue == -1  # closed
