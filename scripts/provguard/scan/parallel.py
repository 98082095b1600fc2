"""`scan_paths`: files scanned on worker processes while the walk finds them; results in the
walk's order, and one file's crash never loses another's result.

Workers are forked before the walk starts, so the known-key index, the allowlist and the options
are inherited rather than pickled (an MCUboot decryption key never crosses a pipe); only the
tasks (paths) found by the walk and the results cross pipes. A file whose worker dies (killed
for memory, a crash in a C library) is retried alone; if it kills its worker again it is
reported unchecked, and every other file keeps its result.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from provguard.errors import InputError
from provguard.scan.allow import Allowlist
from provguard.scan.archive import file_format
from provguard.scan.build import find_partitions, resolve_allowlist
from provguard.scan.engine import (
    WINDOW,
    Context,
    Task,
    combine,
    not_read,
    plan_stream,
    scan_task,
)
from provguard.scan.known import KnownIndex
from provguard.scan.model import AddressRange, Coverage, ScanResult, Unchecked
from provguard.scan.progress import Progress
from provguard.scan.readers import Options, read_bytes
from provguard.scan.walk import Entry

if TYPE_CHECKING:
    import selectors


def default_jobs() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


#: Small files go to a worker in batches (one round trip per batch, not per file), each of about
#: this many bytes or this many files; a batch is cut smaller when that balances the workers.
BATCH_BYTES = 8 << 20
BATCH_FILES = 64


def batches(indices: Sequence[int], tasks: Sequence[Task], jobs: int) -> list[tuple[int, ...]]:
    """`indices` in order, in batches that shrink towards the end, so that every worker gets
    several and the workers end together rather than one waiting for another's last large batch.

    A batch ends at the first file that brings it to `min(BATCH_BYTES, left_bytes // parts)`
    bytes or `min(BATCH_FILES, left_files // parts)` files, where `parts` is `4 * jobs` and
    `left_*` count from the batch's first file to the end."""
    parts = 4 * max(1, jobs)
    left_bytes = sum(_size(tasks[i]) for i in indices)
    left_files = len(indices)
    out: list[tuple[int, ...]] = []
    current: list[int] = []
    size = 0
    for index in indices:
        current.append(index)
        size += _size(tasks[index])
        if size >= min(BATCH_BYTES, left_bytes // parts) or len(current) >= min(
            BATCH_FILES, left_files // parts
        ):
            out.append(tuple(current))
            left_bytes -= size
            left_files -= len(current)
            current, size = [], 0
    # the last file always ends its batch: the files left are then all in `current`
    return out


def _died(task: Task) -> ScanResult:
    name = str(task.entry.path)
    reason = "the worker process reading it died (out of memory?): not checked"
    return ScanResult((), (), (not_read(name, reason),))


def run(
    tasks: Iterable[Task], ctx: Context, jobs: int, progress: Progress | None = None
) -> tuple[list[Task], list[ScanResult]]:
    """`scan_task` of each task, in the order of `tasks`: the tasks taken and their results.

    `tasks` may be a walk still going on: its files are read by the workers while it goes."""
    progress = progress or Progress.off()
    progress.start(0, 0)  # what is to do grows as the tasks are taken
    source = _found(iter(tasks), progress)
    first = list(itertools.islice(source, 2))
    try:
        if jobs < 2 or len(first) < 2 or not hasattr(os, "fork"):
            return _here(itertools.chain(first, source), ctx, progress)
        pool = _Pool(ctx, progress)
        if not pool.run(itertools.chain(first, source), jobs):  # no process to be had
            return _here(itertools.chain(first, source), ctx, progress)
        # a file whose worker died is retried alone, in a process of its own, so a file that
        # kills its worker again harms only itself
        for index in pool.lost:
            again = _Pool(ctx, progress)
            again.run(iter((pool.tasks[index],)), 1)
            if again.results:
                pool.results[index] = again.results[0]
        return pool.tasks, [pool.results.get(i) or _died(task) for i, task in enumerate(pool.tasks)]
    finally:
        progress.finish()


def _here(
    tasks: Iterator[Task], ctx: Context, progress: Progress
) -> tuple[list[Task], list[ScanResult]]:
    """Every task read in this process, in order (tasks already counted in `progress`)."""
    taken: list[Task] = []
    results: list[ScanResult] = []
    for task in tasks:
        taken.append(task)
        results.append(scan_task(task, ctx))
        progress.advance(_ends_file(task), _size(task))
    return taken, results


def _found(tasks: Iterator[Task], progress: Progress) -> Iterator[Task]:
    """`tasks`, each file counted in `progress` as it is taken (a split file once, whole)."""
    for task in tasks:
        if _first_span(task):
            progress.found(task.entry.size or 0)
        yield task
    progress.walked()


def _ends_file(task: Task) -> bool:
    return task.span is None or task.span[1] >= (task.entry.size or 0)


#: Batches a worker holds at once: the one it reads and one waiting in its pipe, so it never
#: idles between two; the rest stays free for whichever worker is done first.
HELD = 2
#: Tasks taken from the walk between two looks at the workers.
STEP = 16


class _Worker:
    """The main process's side of one forked worker: the pipe it takes batches from (written
    without blocking, through `outgoing`) and the pipe its results come back on."""

    def __init__(self, pid: int, tasks: int, results: int) -> None:
        self.pid = pid
        self.tasks = tasks  # -1 once closed: the worker ends when it has done what it holds
        self.results = results  # -1 once it ended
        self.outgoing = bytearray()
        self.incoming = bytearray()
        self.held: collections.deque[int] = collections.deque()  # batch numbers, as sent


class _Pool:
    """Forked workers, each fed batches of tasks on a pipe of its own as the walk finds them (a
    worker holds at most `HELD`; one that is done gets the next), each sending back its batches'
    results, pickled.

    Lighter than `concurrent.futures`: no threads and no import of `multiprocessing`; the workers
    inherit the context by `fork`, and only tasks (paths) and results cross pipes. When a worker
    dies, only the batches it held are lost (`lost`); the others take the rest."""

    def __init__(self, ctx: Context, progress: Progress) -> None:
        self.ctx = ctx
        self.progress = progress
        self.tasks: list[Task] = []  # every task taken, in order
        self.results: dict[int, ScanResult] = {}  # by index in `tasks`
        self.lost: list[int] = []  # indices of the tasks held by a worker that died
        self.batches: list[tuple[int, ...]] = []  # sent, by batch number
        self.workers: list[_Worker] = []
        self.pending: list[int] = []  # taken, in no batch yet
        self.pending_bytes = 0
        self.ready: collections.deque[tuple[int, ...]] = collections.deque()  # cut, not sent
        self.closing = False  # nothing is left to send: each pipe is closed once written

    def run(self, source: Iterator[Task], width: int) -> bool:
        """Every task of `source`, on up to `width` workers (as many as can be forked); False,
        with nothing taken from `source`, when not one could be."""
        # imported before the fork, so that each worker inherits them rather than import them
        import pickle  # noqa: F401, PLC0415
        import selectors  # noqa: PLC0415

        ended = False  # every worker closed its pipe: it is ending of itself
        try:
            for _ in range(width):
                try:
                    self.workers.append(self._fork())
                except OSError:  # out of processes or memory: fewer workers, or none
                    break
            if not self.workers:
                return False
            with selectors.DefaultSelector() as selector:
                self._feed(source, selector)
            ended = True
        finally:
            for worker in self.workers:
                _close(worker)
            for worker in self.workers:
                _reap(worker.pid, stop=not ended)
        return True

    def _fork(self) -> _Worker:
        task_read, task_write = os.pipe()
        try:
            result_read, result_write = os.pipe()
        except OSError:
            os.close(task_read)
            os.close(task_write)
            raise
        try:
            pid = os.fork()
        except OSError:
            for fd in (task_read, task_write, result_read, result_write):
                os.close(fd)
            raise
        if pid == 0:  # pragma: no cover - the child (its coverage is not collected)
            try:  # never back into the caller's code: the child ends here, whatever
                os.close(task_write)
                os.close(result_read)
                for other in self.workers:  # or they would never see their pipe's end
                    _close(other)
                os._exit(self._serve(task_read, result_write))
            finally:
                os._exit(1)
        os.close(task_read)
        os.close(result_write)
        os.set_blocking(task_write, False)
        return _Worker(pid, task_write, result_read)

    def _feed(self, source: Iterator[Task], selector: selectors.BaseSelector) -> None:
        """Take tasks from `source`, batch them to the workers and store what comes back, until
        every task is done or lost and every worker has ended."""
        import selectors  # noqa: PLC0415

        for worker in self.workers:
            selector.register(worker.results, selectors.EVENT_READ, worker)
        walking = True
        while True:
            if walking:
                walking = self._take(source)
            live = [w for w in self.workers if w.results >= 0]
            if not live:  # every worker died: what is left is lost (each is retried alone)
                self._lose_rest(source)
                return
            self._give(live, selector, walking)
            if not selector.get_map():
                return
            for key, _ in selector.select(0 if walking else None):
                worker = key.data
                if key.fd == worker.tasks:
                    self._send(worker, selector)
                else:
                    self._receive(worker, selector)

    def _take(self, source: Iterator[Task]) -> bool:
        """Up to `STEP` tasks from `source`, cut into batches as they fill; whether it goes on."""
        for _ in range(STEP):
            task = next(source, None)
            if task is None:  # the walk is over: what is not sent is cut again, smaller
                live = sum(w.results >= 0 for w in self.workers)  # near the end, so that no
                rest = [i for batch in self.ready for i in batch] + self.pending  # worker idles
                self.ready = collections.deque(batches(rest, self.tasks, max(1, live)))
                self.pending, self.pending_bytes = [], 0
                return False
            self.pending.append(len(self.tasks))
            self.pending_bytes += _size(task)
            self.tasks.append(task)
            if len(self.pending) >= BATCH_FILES or self.pending_bytes >= BATCH_BYTES:
                self.ready.append(tuple(self.pending))
                self.pending, self.pending_bytes = [], 0
        return True

    def _give(self, live: list[_Worker], selector: selectors.BaseSelector, walking: bool) -> None:
        """Batches to the workers that hold fewer than `HELD`; while the walk goes on, a worker
        holding nothing gets what is taken so far rather than wait for a full batch."""
        while self.ready:
            worker = min(live, key=lambda w: len(w.held))
            if len(worker.held) >= HELD:
                break
            self._post(worker, self.ready.popleft(), selector)
        if walking and self.pending:
            for worker in live:
                if not worker.held:
                    self._post(worker, tuple(self.pending), selector)
                    self.pending, self.pending_bytes = [], 0
                    break
        if not walking and not self.ready and not self.closing:
            self.closing = True
            for worker in live:
                self._send(worker, selector)

    def _post(
        self, worker: _Worker, batch: tuple[int, ...], selector: selectors.BaseSelector
    ) -> None:
        import pickle  # noqa: PLC0415

        number = len(self.batches)
        self.batches.append(batch)
        tasks = [self.tasks[i] for i in batch]
        data = pickle.dumps((number, tasks), protocol=pickle.HIGHEST_PROTOCOL)
        worker.outgoing += len(data).to_bytes(8, "little") + data
        worker.held.append(number)
        self._send(worker, selector)

    def _send(self, worker: _Worker, selector: selectors.BaseSelector) -> None:
        """What fits of `worker.outgoing` into its pipe; the pipe closed once all is written and
        nothing is left to send."""
        import selectors  # noqa: PLC0415

        if worker.tasks < 0:
            return
        if worker.outgoing:
            try:
                del worker.outgoing[: os.write(worker.tasks, worker.outgoing)]
            except BlockingIOError:
                pass
            except BrokenPipeError:  # it died: its end is read on its result pipe
                worker.outgoing.clear()
        watched = worker.tasks in selector.get_map()
        if worker.outgoing and not watched:
            selector.register(worker.tasks, selectors.EVENT_WRITE, worker)
        elif not worker.outgoing and watched:
            selector.unregister(worker.tasks)
        if not worker.outgoing and self.closing:
            os.close(worker.tasks)
            worker.tasks = -1

    def _receive(self, worker: _Worker, selector: selectors.BaseSelector) -> None:
        import pickle  # noqa: PLC0415

        chunk = os.read(worker.results, 1 << 20)
        if not chunk:  # the worker ended, or died: what it still held is lost
            if worker.tasks >= 0 and worker.tasks in selector.get_map():
                selector.unregister(worker.tasks)
            selector.unregister(worker.results)
            _close(worker)
            for number in worker.held:
                self.lost += self.batches[number]
            worker.held.clear()
            return
        buffer = worker.incoming
        buffer += chunk
        while len(buffer) >= 8 and len(buffer) >= 8 + (
            size := int.from_bytes(buffer[:8], "little")
        ):
            # written by this program's own forked worker, never by anyone else
            number, found = pickle.loads(buffer[8 : 8 + size])  # noqa: S301
            del buffer[: 8 + size]
            worker.held.remove(number)
            for index, result in zip(self.batches[number], found, strict=True):
                self.results[index] = result
                task = self.tasks[index]
                self.progress.advance(_ends_file(task), _size(task))

    def _lose_rest(self, source: Iterator[Task]) -> None:
        self.lost += self.pending
        self.lost += (i for batch in self.ready for i in batch)
        for task in source:
            self.lost.append(len(self.tasks))
            self.tasks.append(task)
        self.pending, self.ready = [], collections.deque()

    def _serve(self, tasks: int, out: int) -> int:
        """A worker's loop: batches from `tasks` until it is closed, each batch's results to
        `out`, both framed as an 8-byte little-endian length and a pickle; 0 when `tasks` ended
        between two batches, 1 when the worker was stopped (Ctrl-C, a closed or cut pipe)."""
        import pickle  # noqa: PLC0415

        try:
            while header := _read(tasks, 8):
                number, batch = pickle.loads(_read(tasks, int.from_bytes(header, "little")))  # noqa: S301
                found = [scan_task(task, self.ctx) for task in batch]
                data = pickle.dumps((number, found), protocol=pickle.HIGHEST_PROTOCOL)
                view = memoryview(len(data).to_bytes(8, "little") + data)
                while view:
                    view = view[os.write(out, view) :]
        except BaseException:  # what this worker held is then lost (and retried), not wrong
            return 1
        return 0


def _read(fd: int, size: int) -> bytes:
    """`size` bytes from `fd`; b"" at its end before any; EOFError at its end within them."""
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            if data:
                raise EOFError
            break
        data += chunk
    return bytes(data)


def _close(worker: _Worker) -> None:
    for fd in (worker.tasks, worker.results):
        if fd >= 0:
            os.close(fd)
    worker.tasks = worker.results = -1


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


#: A raw file larger than this is split across workers (windows owned by one worker each).
SPLIT = 64 << 20


def split(tasks: Iterable[Task], jobs: int) -> list[Task]:
    """Large raw files cut into spans, one per worker, when more than one worker runs."""
    return [span for task in tasks for span in split_task(task, jobs)]


def split_task(task: Task, jobs: int) -> list[Task]:
    """`task`, or its file cut into spans of whole windows, one per worker, when it is a raw
    file over `SPLIT` and more than one worker runs."""
    size = task.entry.size or 0
    if jobs < 2 or size <= SPLIT or not _plain(task.entry.path):
        return [task]
    step = -(-size // jobs)
    step = -(-step // WINDOW) * WINDOW  # whole windows per span
    return [Task(task.entry, (a, min(a + step, size))) for a in range(0, size, step)]


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
    walk's), whatever order the workers finish in. The workers start on the first files the walk
    finds, while it goes on."""
    unreadable: list[Coverage] = []
    skipped: list[Unchecked] = []

    def files(items: Iterator[Task | Coverage | Unchecked]) -> Iterator[Task]:
        for item in items:
            if isinstance(item, Task):
                yield from split_task(item, jobs)
            elif isinstance(item, Coverage):
                unreadable.append(item)
            else:
                skipped.append(item)

    source: Iterable[Task] = files(plan_stream(paths, exclude))
    if allow is not None and allow.symbols:
        # a symbol's flash range is looked up for each HEX and .bin file: the walk comes first
        source = list(source)
        allow = resolve_allowlist(allow, [t.entry.path for t in source if _first_span(t)])
    ctx = Context(known, allow, options or Options(), find_partitions(paths))
    tasks, results = run(source, ctx, jobs, progress)
    if not tasks and not unreadable:
        raise InputError("no files found", path=", ".join(str(p) for p in paths))
    done = ScanResult((), (), tuple(unreadable))
    return combine([*merge_spans(tasks, results), done], tuple(skipped))


def _first_span(task: Task) -> bool:
    return task.span is None or task.span[0] == 0
