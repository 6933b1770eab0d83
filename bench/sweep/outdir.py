"""The output folder of a ``gptoss bench`` run: which folder, who may write into it, and whether
a results file already there may be replaced.

* Without ``--out`` every run gets the next numbered folder under ``gptoss-results`` (``run-1``,
  ``run-2``, ...), so the same command can be run again and again; ``--resume`` without ``--out``
  continues the newest one.
* One run at a time per folder: ``RunLock`` holds an exclusive ``fcntl.flock`` on a lock file in
  it for the whole run. The kernel drops the lock when the process ends, however it ends, so a
  crashed run never leaves a stale lock behind.
* A results file that holds no measurement (a run that failed before its first load or case)
  does not block the next run into the same folder.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from bench.results import Results
from diagnostics.errors import UserError, write_failure

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking
    fcntl = None

log = logging.getLogger("gptoss.bench")

DEFAULT_ROOT = Path("gptoss-results")
RUN_PREFIX = "run-"
LOCK_NAME = ".gptoss-bench.lock"
WRITABLE_FIX = "pass --out a folder you can write to"

_RUN = re.compile(rf"{RUN_PREFIX}([0-9]+)")


def _numbers(root: Path) -> list[int]:
    try:
        names = [p.name for p in root.iterdir() if p.is_dir()]
    except OSError:
        return []
    return sorted(int(m.group(1)) for m in map(_RUN.fullmatch, names) if m)


def run_folder(root: Path = DEFAULT_ROOT, *, resume: bool = False) -> Path:
    """The folder of a run without ``--out``: the newest ``root/run-N`` to resume, else a new one.

    A new folder is made with an exclusive ``mkdir``, so two runs started at once get two."""
    numbers = _numbers(root)
    if resume and numbers:
        return root / f"{RUN_PREFIX}{numbers[-1]}"
    n = numbers[-1] + 1 if numbers else 1
    while True:
        folder = root / f"{RUN_PREFIX}{n}"
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            n += 1
        except OSError as e:
            raise write_failure(e, root, WRITABLE_FIX) from None


def holds_measurements(results: Results) -> bool:
    """True when the run measured something worth keeping: a case that ran (ok, or out of
    memory) or a model that loaded. A run that only failed to start holds nothing."""
    return bool(results.done_keys()) or any(x.status == "ok" for x in results.loads)


class RunLock:
    """An exclusive lock on an output folder for the length of one run.

    The lock file is removed when the run ends (a numbered run folder left empty, by a run that
    failed to start, goes too). It is unlinked while still locked, and a run that got the lock
    checks that the file it locked is still the one at the path, so two runs never both hold it;
    a run killed before its release leaves the file, but the lock itself dies with the process."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._file = None

    def acquire(self) -> "RunLock":
        if fcntl is None:  # pragma: no cover
            return self
        for _ in range(100):  # another run removed the file between our open and our lock: again
            f = self._open()
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:  # held by a running process
                f.seek(0)
                holder = f.read(32).strip()
                f.close()
                who = f"another gptoss bench (pid {holder})" if holder.isdigit() else "another gptoss bench"
                raise UserError(f"{who} is writing into {self.folder}; wait for it to finish or pass another --out.") from None
            except OSError as e:  # a file system without locks (some network mounts): run unguarded
                log.warning("cannot lock %s (%s); a second run into it at the same time would go unnoticed", self.folder, e)
                f.close()
                return self
            try:
                same = os.stat(self.path).st_ino == os.fstat(f.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            f.close()
        else:  # pragma: no cover
            raise UserError(f"could not lock {self.folder}; retry, or pass another --out.")
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        self._file = f
        return self

    def _open(self):
        try:
            return open(self.path, "a+", encoding="utf-8")
        except OSError as e:
            raise write_failure(e, self.folder, WRITABLE_FIX) from None

    def release(self) -> None:
        if self._file is None:
            return
        try:
            self.path.unlink()  # while still locked: see acquire
            if _RUN.fullmatch(self.folder.name) and not any(self.folder.iterdir()):
                self.folder.rmdir()  # a numbered run folder of a run that wrote nothing
        except OSError:
            pass  # tidying up only
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None
