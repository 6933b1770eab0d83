"""The results of one run and the file that mirrors them: every change is saved at once.

The runner changes results only through a journal, and the journal writes the file (atomically,
validated) after each change, so a crash, an out-of-memory or a lost session loses nothing that
was measured. A new run's file appears with its first load or case: a run that fails to start
leaves nothing behind to block the next one. A write that fails (a full disk) is one sentence;
the file keeps what the last good write saved.
"""

from __future__ import annotations

from pathlib import Path

from bench.results import CaseKey, CaseResult, LoadRecord, Results, save
from diagnostics.errors import write_failure
from diagnostics.meta import now_iso

_THEN_RESUME = "then run the same command with --resume: the cases saved before are intact"


class Journal:
    def __init__(self, results: Results, path: Path | None):
        """``path`` None: the results are kept in memory only (a torchrun rank other than 0)."""
        self.results = results
        self.path = Path(path) if path is not None else None

    def save(self) -> None:
        if self.path is None:
            return  # a torchrun rank other than 0 keeps its results in memory
        if not (self.results.cases or self.results.loads or self.path.exists()):
            return  # nothing recorded yet (a resumed run's file is rewritten from the start)
        try:
            save(self.results, self.path)
        except OSError as e:
            raise write_failure(e, self.path, f"make it writable, {_THEN_RESUME}",
                                full=f"free some space, {_THEN_RESUME}") from None

    def start(self) -> None:
        """A sweep begins (or resumes): the file says it is not complete."""
        self.results.complete = False
        self.save()

    def add_case(self, case: CaseResult) -> None:
        self.results.add_case(case)
        self.save()

    def skip(self, keys: list[CaseKey], why: str) -> None:
        """Record cases as skipped, unless they already hold a result."""
        for key in keys:
            old = self.results.case(key)
            if old is None or old.status == "skipped":
                self.results.add_case(CaseResult(key=key, status="skipped", message=why))
        self.save()

    def fail_cases(self, keys: list[CaseKey], status: str, message: str) -> None:
        for key in keys:
            self.results.add_case(CaseResult(key=key, status=status, message=message))
        self.save()

    def add_load(self, record: LoadRecord, backend: dict) -> None:
        """A load (or a connection) of one group: replaces an earlier record of the same group."""
        res = self.results
        res.backend = backend  # a server is known only once connected
        res.loads = [x for x in res.loads if (x.quant, x.attn) != (record.quant, record.attn)] + [record]
        if record.fallback_reason:
            res.warn(
                "fallback",
                f"the MXFP4 experts were dequantized to {record.weights_path} (quant={record.quant}): {record.fallback_reason}",
            )
        if res.model.parameters is None and record.parameters:
            res.model.parameters = record.parameters
        self.save()

    def warn(self, code: str, message: str, case: str | None = None) -> None:
        self.results.warn(code, message, case)
        self.save()

    def finish(self, keys: list[CaseKey]) -> None:
        self.results.complete = all(self.results.case(k) is not None for k in keys)
        self.results.finished_at = now_iso()
        self.save()
