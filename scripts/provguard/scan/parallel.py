"""`scan_paths`: files scanned on worker processes; results in the input order, and one file's
crash never loses another's result.

Workers are forked, so the known-key index, the allowlist and the options are inherited rather
than pickled (an MCUboot decryption key never crosses a pipe). A file whose worker dies (killed
for memory, a crash in a C library) is retried alone; if it kills its worker again it is reported
unchecked, and every other file keeps its result.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from provguard.errors import InputError
from provguard.scan.allow import Allowlist
from provguard.scan.archive import file_format
from provguard.scan.build import find_partitions, resolve_allowlist
from provguard.scan.engine import WINDOW, Context, Task, combine, not_read, plan, scan_task
from provguard.scan.known import KnownIndex
from provguard.scan.model import AddressRange, ScanResult
from provguard.scan.progress import Progress
from provguard.scan.readers import Options, read_bytes
from provguard.scan.walk import Entry

if TYPE_CHECKING:
    from concurrent.futures import Future

# `multiprocessing` and `concurrent.futures` are imported when workers are started (--jobs 1, or a
# single file, never needs them).

_CONTEXT: Context | None = None
_TASKS: Sequence[Task] = ()


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _work(batch: tuple[int, ...]) -> list[ScanResult]:
    assert _CONTEXT is not None  # set before the pool forks
    return [scan_task(_TASKS[index], _CONTEXT) for index in batch]


#: Small files go to a worker in batches (one round trip per batch, not per file), each of about
#: this many bytes or this many files; a batch is cut smaller when that balances the workers.
BATCH_BYTES = 8 << 20
BATCH_FILES = 64


def batches(indices: Sequence[int], tasks: Sequence[Task], jobs: int) -> list[tuple[int, ...]]:
    """`indices` in order, grouped so that every worker gets several batches."""
    total = sum(_size(tasks[i]) for i in indices)
    limit = max(1, min(BATCH_BYTES, total // (4 * jobs) if jobs else total))
    count_limit = max(1, min(BATCH_FILES, len(indices) // (4 * jobs) if jobs else BATCH_FILES))
    out: list[tuple[int, ...]] = []
    current: list[int] = []
    size = 0
    for index in indices:
        current.append(index)
        size += _size(tasks[index])
        if size >= limit or len(current) >= count_limit:
            out.append(tuple(current))
            current, size = [], 0
    if current:
        out.append(tuple(current))
    return out


def _can_fork() -> bool:
    import multiprocessing  # noqa: PLC0415

    return "fork" in multiprocessing.get_all_start_methods()


def _died(task: Task) -> ScanResult:
    name = str(task.entry.path)
    reason = "the worker process reading it died (out of memory?): not checked"
    return ScanResult((), (), (not_read(name, reason),))


def run(
    tasks: Sequence[Task], ctx: Context, jobs: int, progress: Progress | None = None
) -> list[ScanResult]:
    """`scan_task` of each task, in the order of `tasks`."""
    progress = progress or Progress.off()
    progress.start(len({id(t.entry) for t in tasks}), sum(_size(t) for t in tasks))
    results: list[ScanResult | None] = [None] * len(tasks)
    if jobs < 2 or len(tasks) < 2 or not _can_fork():
        for index, task in enumerate(tasks):
            results[index] = scan_task(task, ctx)
            progress.advance(task.span is None or _last_span(tasks, index), _size(task))
        progress.finish()
        return [r for r in results if r is not None]
    global _CONTEXT, _TASKS
    _CONTEXT, _TASKS = ctx, tasks
    try:
        remaining = list(range(len(tasks)))
        for width in (min(jobs, len(tasks)), 1):
            broken = _round(remaining, width, tasks, results, progress)
            if not broken:
                break
            remaining = broken
        else:
            for index in remaining:
                results[index] = _died(tasks[index])
    finally:
        _CONTEXT, _TASKS = None, ()
        progress.finish()
    return [r if r is not None else _died(tasks[i]) for i, r in enumerate(results)]


def _round(
    indices: list[int],
    width: int,
    tasks: Sequence[Task],
    results: list[ScanResult | None],
    progress: Progress,
) -> list[int]:
    """Run `indices` on `width` workers (width 1: each in a pool of its own); the indices whose
    worker died."""
    import multiprocessing  # noqa: PLC0415
    from concurrent.futures import ProcessPoolExecutor, as_completed  # noqa: PLC0415
    from concurrent.futures.process import BrokenProcessPool  # noqa: PLC0415

    context = multiprocessing.get_context("fork")
    # width 1 (a retry): each file in a pool of its own, so a file that kills its worker again
    # harms only itself
    groups = [batches(indices, tasks, width)] if width > 1 else [[(i,)] for i in indices]
    broken: list[int] = []
    for group in groups:
        with ProcessPoolExecutor(max_workers=width, mp_context=context) as pool:
            futures: dict[Future[list[ScanResult]], tuple[int, ...]] = {
                pool.submit(_work, batch): batch for batch in group
            }
            for future in as_completed(futures):
                batch = futures[future]
                try:
                    done = future.result()
                except BrokenProcessPool:
                    broken += batch
                    continue
                for index, result in zip(batch, done, strict=True):
                    results[index] = result
                    progress.advance(
                        tasks[index].span is None or _last_span(tasks, index), _size(tasks[index])
                    )
    return sorted(broken)


def _size(task: Task) -> int:
    if task.span is not None:
        return task.span[1] - task.span[0]
    return task.entry.size or 0


def _last_span(tasks: Sequence[Task], index: int) -> bool:
    return index + 1 == len(tasks) or tasks[index + 1].entry is not tasks[index].entry


#: A raw file larger than this is split across workers (windows owned by one worker each).
SPLIT = 64 << 20


def split(tasks: Sequence[Task], jobs: int) -> list[Task]:
    """Large raw files cut into spans, one per worker, when more than one worker runs."""
    if jobs < 2:
        return list(tasks)
    out: list[Task] = []
    for task in tasks:
        size = task.entry.size or 0
        if size <= SPLIT or not _plain(task.entry.path):
            out.append(task)
            continue
        step = -(-size // jobs)
        step = -(-step // WINDOW) * WINDOW  # whole windows per span
        out += [Task(task.entry, (a, min(a + step, size))) for a in range(0, size, step)]
    return out


def _plain(path: Path) -> bool:
    """Whether a file is neither an archive nor a structured image (raw bytes only)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096)
            if file_format(handle, str(path)) is not None:
                return False
    except OSError:
        return False
    return read_bytes(head, str(path), Options())[0].format in ("raw", "text")


def merge_spans(tasks: Sequence[Task], results: Sequence[ScanResult]) -> list[ScanResult]:
    """One result per file again: the spans of a split file joined."""
    out: list[ScanResult] = []
    pending: list[ScanResult] = []
    for index, (task, result) in enumerate(zip(tasks, results, strict=True)):
        if task.span is None:
            out.append(result)
            continue
        pending.append(result)
        last = index + 1 == len(tasks) or tasks[index + 1].entry is not task.entry
        if last:
            out.append(_join_spans(task.entry, pending))
            pending = []
    return out


def _join_spans(entry: Entry, parts: list[ScanResult]) -> ScanResult:
    covers = [c for r in parts for c in r.coverage]
    first = covers[0]
    ranges = tuple(r for c in covers for r in c.ranges)
    joined = AddressRange(ranges[0].start, ranges[-1].end) if ranges else None
    cover = dataclasses.replace(
        first,
        size=entry.size or 0,
        examined=sum(c.examined for c in covers),
        ranges=(joined,) if joined is not None else (),
        unchecked=tuple(u for c in covers for u in c.unchecked),
        findings=sum(c.findings for c in covers),
    )
    return ScanResult(
        tuple(f for r in parts for f in r.findings),
        tuple(f for r in parts for f in r.allowed),
        (cover,),
    )


def scan_paths(
    paths: Sequence[Path],
    known: KnownIndex,
    allow: Allowlist | None = None,
    options: Options | None = None,
    *,
    exclude: tuple[str, ...] = (),
    jobs: int = 1,
    progress: Progress | None = None,
) -> ScanResult:
    """Every file under `paths`, on `jobs` worker processes; results in a stable order (the
    walk's), whatever order the workers finish in."""
    work = plan(paths, exclude)
    if not work.tasks and not work.unreadable:
        raise InputError("no files found", path=", ".join(str(p) for p in paths))
    ctx = Context(
        known,
        resolve_allowlist(allow, [t.entry.path for t in work.tasks]),
        options or Options(),
        find_partitions(paths),
    )
    tasks = split(work.tasks, jobs)
    results = run(tasks, ctx, jobs, progress)
    unreadable = ScanResult((), (), work.unreadable)
    return combine([*merge_spans(tasks, results), unreadable], work.skipped)
