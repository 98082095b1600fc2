"""What the scan's plan makes of the paths it is given, in the walk's order: a task for each file
to read, once (a file named twice, or reached again through a link, is read once and the second
name listed as skipped with why), and a "not read" coverage entry with the reason for a path that
is no file to read. The workers start on the tasks while the walk goes on (`plan_stream`);
`plan` collects the same."""

from __future__ import annotations

import os
from pathlib import Path

from provguard.scan import engine
from provguard.scan.engine import Task
from provguard.scan.model import Coverage, Unchecked


def test_a_file_named_twice_or_linked_is_read_once_and_the_others_say_why(tmp_path: Path) -> None:
    build = tmp_path / "build"
    build.mkdir()
    (build / "a.bin").write_bytes(b"a")
    (build / "b.bin").write_bytes(b"b")
    (build / "z.lnk").symlink_to(build / "b.bin")
    os.link(build / "a.bin", tmp_path / "hard.bin")
    work = engine.plan([build, build / "a.bin", tmp_path / "hard.bin"])
    assert [str(t.entry.path) for t in work.tasks] == [str(build / "a.bin"), str(build / "b.bin")]
    assert all(t.span is None for t in work.tasks)
    assert work.unreadable == ()
    assert work.skipped == (
        Unchecked(str(build / "z.lnk"), f"the same file as {build / 'b.bin'}: read once"),
        Unchecked(str(build / "a.bin"), "the same file as one named before: read once"),
        Unchecked(str(tmp_path / "hard.bin"), "the same file as one named before: read once"),
    )


def test_a_path_that_is_no_file_to_read_is_a_not_read_entry_with_its_reason(
    tmp_path: Path,
) -> None:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "real.bin").write_bytes(b"x")
    (tmp_path / "gone").symlink_to(tmp_path / "missing")
    stream = list(engine.plan_stream([tmp_path], ("*.o",)))
    (tmp_path / "skip.o").write_bytes(b"o")  # found by the walk that `plan` runs below
    work = engine.plan([tmp_path], ("*.o",))
    gone, pipe = str(tmp_path / "gone"), str(tmp_path / "pipe")
    expected = (
        Coverage(gone, "not read", 0, 0, unchecked=(Unchecked(gone, "broken symlink"),)),
        Coverage(
            pipe, "not read", 0, 0, unchecked=(Unchecked(pipe, "a FIFO (named pipe): not read"),)
        ),
    )
    assert work.unreadable == expected
    assert [t.entry.path for t in work.tasks] == [tmp_path / "real.bin"]
    assert work.skipped == (Unchecked(str(tmp_path / "skip.o"), "excluded by --exclude *.o"),)
    # the stream gives the same items in the walk's (sorted) order, each as it is found
    assert [type(i) for i in stream] == [Coverage, Coverage, Task]
    assert stream[:2] == list(expected)


def test_the_walk_goes_on_after_a_file_named_before(tmp_path: Path) -> None:
    for name in ("a.bin", "b.bin", "c.bin"):
        (tmp_path / name).write_bytes(name.encode())
    work = engine.plan([tmp_path / "b.bin", tmp_path])
    assert [t.entry.path.name for t in work.tasks] == ["b.bin", "a.bin", "c.bin"]
    assert work.skipped == (
        Unchecked(str(tmp_path / "b.bin"), "the same file as one named before: read once"),
    )
