"""The results file: the contract between bench, reports, compare, history and export.

One JSON document per run, versioned by its ``schema`` field and described by the JSON Schema in
``bench/results/schema/results-1.schema.json``. It is validated on load; older versions are
upgraded on load; it is written atomically after every case, so a crash, an out-of-memory or a
lost Colab session loses nothing already measured.

``metrics`` (the registry of names), ``records`` (the dataclasses), ``requests`` (per-request
records of a sustained-load case, stored by column), ``serving`` (their aggregates, SLOs, goodput,
the knee of a latency-throughput curve), ``stats`` (``Stat``), ``io`` (validate, upgrade, load,
save), ``environment`` (the flat environment summary) and ``errors``.
Everything else depends on this package, not on the code that runs models; the names below are
its public surface.
"""

from bench.results.environment import SUMMARY_FIELDS, env_differences, summarize_environment
from bench.results.errors import ResultsError, UserError
from bench.results.io import SCHEMA_FILE, SCHEMA_VERSION, json_schema, load, parse, save, schema_version, upgrade, validate
from bench.results.metrics import CASE_METRICS, LOAD_METRICS, METRICS, MetricSpec
from bench.results.records import (
    CACHES,
    DECODES,
    EFFORTS,
    LOADS,
    MODES,
    QUANTS,
    SCHEMA_ID,
    STATUSES,
    CaseKey,
    CaseResult,
    LoadRecord,
    ModelInfo,
    Results,
    ResultWarning,
    effort_mix,
)
from bench.results.requests import RequestLog, RequestRecord
from bench.results.stats import Stat, percentile

__all__ = [
    "CACHES", "CASE_METRICS", "DECODES", "EFFORTS", "LOAD_METRICS", "LOADS", "METRICS", "MODES", "QUANTS", "SCHEMA_FILE",
    "SCHEMA_ID", "SCHEMA_VERSION",
    "STATUSES", "SUMMARY_FIELDS", "CaseKey", "CaseResult", "LoadRecord", "MetricSpec", "ModelInfo", "Results",
    "RequestLog", "RequestRecord", "ResultWarning", "ResultsError", "Stat", "UserError", "effort_mix", "env_differences", "json_schema", "load", "parse",
    "percentile", "save", "schema_version", "summarize_environment", "upgrade", "validate",
]
