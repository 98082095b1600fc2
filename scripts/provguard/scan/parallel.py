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
import select
from collections.abc import Sequence
from pathlib import Path

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


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


#: Small files go to a worker in batches (one round trip per batch, not per file), each of about
#: this many bytes or this many files; a batch is cut smaller when that balances the workers.
BATCH_BYTES = 8 << 20
#: What one write to a pipe moves whole (POSIX guarantees 512 bytes; Linux 4096).
_PIPE_BUF = getattr(select, "PIPE_BUF", 512)
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
    if jobs < 2 or len(tasks) < 2 or not hasattr(os, "fork"):
        for index, task in enumerate(tasks):
            results[index] = scan_task(task, ctx)
            progress.advance(task.span is None or _last_span(tasks, index), _size(task))
        progress.finish()
        return [r for r in results if r is not None]
    try:
        groups = batches(range(len(tasks)), tasks, min(jobs, len(tasks)))
        lost = _Pool(tasks, ctx, results, progress).run(groups, min(jobs, len(groups)))
        # a file whose worker died is retried alone, in a process of its own, so a file that
        # kills its worker again harms only itself
        for index in lost:
            _Pool(tasks, ctx, results, progress).run([(index,)], 1)
    finally:
        progress.finish()
    return [r if r is not None else _died(tasks[i]) for i, r in enumerate(results)]


class _Pool:
    """Forked workers that take batches from a shared pipe (a fast worker takes more) and send
    back each batch's results, pickled; what a dead worker held is reported as lost.

    Lighter than `concurrent.futures`: no threads and no import of `multiprocessing`; the workers
    inherit the tasks and the context by `fork`, and only batch numbers and results cross pipes.
    When a worker dies, only the batch it held is lost (the others keep taking the rest)."""

    def __init__(
        self,
        tasks: Sequence[Task],
        ctx: Context,
        results: list[ScanResult | None],
        progress: Progress,
    ) -> None:
        self.tasks = tasks
        self.ctx = ctx
        self.results = results
        self.progress = progress
        self.queue = -1  # the write end of the pipe of batch numbers, while it is open

    def run(self, groups: Sequence[tuple[int, ...]], width: int) -> list[int]:
        """Every batch of `groups` on `width` workers; the indices of the tasks whose worker died
        before it sent their results."""
        # imported before the fork, so that each worker inherits them rather than import them
        import pickle  # noqa: F401, PLC0415
        import selectors  # noqa: F401, PLC0415

        queue_read, self.queue = os.pipe()
        workers: dict[int, int] = {}  # result pipe -> pid
        ended = False  # every worker closed its pipe: it is ending of itself
        try:
            for _ in range(width):
                result_read, result_write = os.pipe()
                try:
                    pid = os.fork()
                except OSError:
                    os.close(result_read)
                    os.close(result_write)
                    raise
                if pid == 0:  # pragma: no cover - the child (its coverage is not collected)
                    try:  # never back into the caller's code: the child ends here, whatever
                        for fd in (result_read, self.queue, *workers):
                            os.close(fd)
                        self._work(groups, queue_read, result_write)
                    finally:
                        os._exit(1)
                os.close(result_write)
                workers[result_read] = pid
            os.close(queue_read)
            queue_read = -1
            done = self._collect(groups, list(workers))
            ended = True
        finally:
            for fd in (queue_read, self.queue, *workers):
                if fd >= 0:
                    os.close(fd)
            for pid in workers.values():
                _reap(pid, stop=not ended)
        return sorted(i for n, batch in enumerate(groups) if n not in done for i in batch)

    def _collect(self, groups: Sequence[tuple[int, ...]], pipes: list[int]) -> set[int]:
        """Feed the batch numbers to the queue (then close it: the workers end when it is empty)
        and store the results that come back on `pipes`; the numbers of the batches done."""
        import pickle  # noqa: PLC0415
        import selectors  # noqa: PLC0415

        # 4-byte records: a pipe write that small is atomic, so each worker reads whole ones
        pending = b"".join(n.to_bytes(4, "little") for n in range(len(groups)))
        queue = self.queue
        os.set_blocking(queue, False)
        buffers = {fd: bytearray() for fd in pipes}
        done: set[int] = set()
        with selectors.DefaultSelector() as selector:
            selector.register(queue, selectors.EVENT_WRITE)
            for fd in pipes:
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                for key, _ in selector.select():
                    fd = int(key.fd)
                    if fd == queue:
                        try:  # at most PIPE_BUF bytes: written whole or not at all
                            pending = pending[os.write(queue, pending[:_PIPE_BUF]) :]
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:  # every worker died: what is left is lost
                            pending = b""
                        if not pending:
                            selector.unregister(queue)
                            os.close(queue)
                            self.queue = -1
                        continue
                    chunk = os.read(fd, 1 << 20)
                    if not chunk:  # the worker ended (or died)
                        selector.unregister(fd)
                        continue
                    buffer = buffers[fd]
                    buffer += chunk
                    while len(buffer) >= 8 and len(buffer) >= 8 + (
                        size := int.from_bytes(buffer[:8], "little")
                    ):
                        # written by this program's own forked worker, never by anyone else
                        batch, found = pickle.loads(buffer[8 : 8 + size])  # noqa: S301
                        del buffer[: 8 + size]
                        self._store(groups[batch], found)
                        done.add(batch)
        return done

    def _store(self, batch: tuple[int, ...], found: list[ScanResult]) -> None:
        for index, result in zip(batch, found, strict=True):
            self.results[index] = result
            last = self.tasks[index].span is None or _last_span(self.tasks, index)
            self.progress.advance(last, _size(self.tasks[index]))

    def _work(self, groups: Sequence[tuple[int, ...]], queue: int, out: int) -> None:
        """A worker: batches from `queue` until it is empty, results to `out`; never returns."""
        import pickle  # noqa: PLC0415

        code = 0
        try:
            while len(record := os.read(queue, 4)) == 4:
                batch = int.from_bytes(record, "little")
                found = [scan_task(self.tasks[i], self.ctx) for i in groups[batch]]
                data = pickle.dumps((batch, found), protocol=pickle.HIGHEST_PROTOCOL)
                view = memoryview(len(data).to_bytes(8, "little") + data)
                while view:
                    view = view[os.write(out, view) :]
        except BaseException:  # Ctrl-C, a closed pipe: what this worker held is lost, not wrong
            code = 1
        os._exit(code)


def _reap(pid: int, *, stop: bool) -> None:
    """Wait for a worker to end; `stop` (the main process is being interrupted) ends it first."""
    try:
        if stop:
            import signal  # noqa: PLC0415

            os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


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
