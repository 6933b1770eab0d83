"""Simulated file-system faults: a read-only folder and a disk that fills up mid-write.

The tests run as any user (root ignores permission bits) and cannot mount a small file system,
so the faults are injected where Python opens files: ``io.open``/``open`` (which ``Path.write_text``,
``os.fdopen`` and most libraries go through), ``os.open`` (``tempfile.mkstemp``) and ``os.mkdir``.
Only paths under the given folder are affected.
"""

from __future__ import annotations

import builtins
import errno
import fnmatch
import io
import os
from pathlib import Path


def _path_of(file) -> str | None:
    if isinstance(file, int):
        try:
            return os.readlink(f"/proc/self/fd/{file}")
        except OSError:
            return None
    try:
        return os.path.abspath(os.fsdecode(os.fspath(file)))
    except TypeError:
        return None


def _writing(mode: str) -> bool:
    return any(c in mode for c in "wax+")


def _error(code: int, path) -> OSError:
    return OSError(code, os.strerror(code), str(path))


class _Folder:
    def __init__(self, folder):
        self.root = os.path.realpath(folder)

    def holds(self, path: str | None) -> bool:
        return path is not None and (path == self.root or path.startswith(self.root + os.sep))


def read_only(monkeypatch, folder) -> None:
    """Make ``folder`` behave like a read-only mount: nothing can be created or written in it."""
    where = _Folder(folder)
    real_open, real_os_open, real_mkdir = io.open, os.open, os.mkdir

    def fake_open(file, mode="r", *args, **kwargs):
        if _writing(mode) and where.holds(_path_of(file)):
            raise _error(errno.EROFS, file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and where.holds(_path_of(path)):
            raise _error(errno.EROFS, path)
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    def fake_mkdir(path, mode=0o777, *, dir_fd=None):
        if where.holds(_path_of(path)):
            raise _error(errno.EEXIST if os.path.isdir(path) else errno.EROFS, path)
        return real_mkdir(path, mode, dir_fd=dir_fd)

    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)
    monkeypatch.setattr(os, "mkdir", fake_mkdir)


class _FillingFile:
    """A file whose writes stop with ENOSPC once the disk's free bytes are used up."""

    def __init__(self, f, disk: "FullDisk"):
        self._f, self._disk = f, disk

    def write(self, data):
        part = self._disk.take(data, getattr(self._f, "name", "?"))
        return self._f.write(data) if part is None else self._disk.fail(self._f.write, part)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self._f.close()
        except OSError:
            pass
        return False

    def __iter__(self):
        return iter(self._f)

    def __getattr__(self, name):
        return getattr(self._f, name)


class FullDisk:
    """A disk under ``folder`` that fills up: files whose name matches ``pattern`` are written
    normally for the first ``spare_files`` of them; after that they get ``free_bytes`` in all,
    and the write that needs more ends with ENOSPC (after writing what still fitted). Writes go
    through ``io.open`` files or straight to descriptors (``os.write``, ``os.pwrite``)."""

    def __init__(self, monkeypatch, folder, *, pattern: str = "*", spare_files: int = 0, free_bytes: int = 0):
        self.where = _Folder(folder)
        self.pattern, self.spare_files, self.free = pattern, spare_files, free_bytes
        self.opened = 0
        self.failures = 0
        self._spare_fds: dict[tuple[int, int], bool] = {}
        real_open, real_write, real_pwrite = io.open, os.write, os.pwrite

        def fake_open(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            if not (_writing(mode) and self._ours(_path_of(file))):
                return f
            self.opened += 1
            return f if self.opened <= self.spare_files else _FillingFile(f, self)

        def fake_write(fd, data):
            part = self._take_fd(fd, data)
            return real_write(fd, data) if part is None else self.fail(lambda p: real_write(fd, p), part)

        def fake_pwrite(fd, data, offset):
            part = self._take_fd(fd, data)
            return real_pwrite(fd, data, offset) if part is None else self.fail(lambda p: real_pwrite(fd, p, offset), part)

        monkeypatch.setattr(io, "open", fake_open)
        monkeypatch.setattr(builtins, "open", fake_open)
        monkeypatch.setattr(os, "write", fake_write)
        monkeypatch.setattr(os, "pwrite", fake_pwrite)

    def _ours(self, path: str | None) -> bool:
        return self.where.holds(path) and fnmatch.fnmatch(Path(path).name, self.pattern)

    def _take_fd(self, fd: int, data):
        path = _path_of(fd)
        if not self._ours(path):
            return None
        key = (fd, os.fstat(fd).st_ino)
        if key not in self._spare_fds:
            self.opened += 1
            self._spare_fds[key] = self.opened <= self.spare_files
        return None if self._spare_fds[key] else self.take(data, path)

    def take(self, data, name):
        """None when ``data`` fits (its size is taken from the free bytes), else the part that still fits."""
        n = data.nbytes if isinstance(data, memoryview) else len(data)
        if n <= self.free:
            self.free -= n
            return None
        fits, self.free = self.free, 0
        self.failures += 1
        self._name = name
        return data.cast("B")[:fits] if isinstance(data, memoryview) else data[:fits]

    def fail(self, write, part):
        """Write ``part`` (what still fitted) with ``write``, then end with ENOSPC."""
        if len(part):
            write(part)
        raise _error(errno.ENOSPC, self._name)
