"""The metric registry: every name, its unit, which direction is better, and its phase.

Every other module (compare thresholds, history columns, exports, report tables) reads names
from here.
"""

from __future__ import annotations

from dataclasses import dataclass

@dataclass(frozen=True)
class MetricSpec:
    name: str
    unit: str  # "s", "tok/s", "req/s", "bytes", "tokens", "fraction"
    higher_is_better: bool
    phase: str  # "case" or "load"
    description: str


_M = MetricSpec  # short, for the table below only
METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in [
        _M("ttft_s", "s", False, "case", "time to first token (prompt processing + first step)"),
        _M("prefill_tok_s", "tok/s", True, "case", "prompt tokens processed per second"),
        _M("decode_tok_s", "tok/s", True, "case", "new tokens per second after the first token"),
        _M("itl_p50_s", "s", False, "case", "inter-token latency, median"),
        _M("itl_p90_s", "s", False, "case", "inter-token latency, 90th percentile"),
        _M("itl_p99_s", "s", False, "case", "inter-token latency, 99th percentile"),
        _M("e2e_s", "s", False, "case", "end-to-end time of one request"),
        _M("new_tokens", "tokens", True, "case", "new tokens generated per sequence"),
        _M("total_tok_s", "tok/s", True, "case", "output tokens per second over all sequences/requests"),
        _M("peak_alloc_bytes", "bytes", False, "case", "peak memory allocated by torch"),
        _M("peak_reserved_bytes", "bytes", False, "case", "peak memory reserved by torch's allocator"),
        _M("nvml_used_bytes", "bytes", False, "case", "device memory in use as NVML sees it"),
        _M("kv_cache_bytes", "bytes", False, "case", "size of the KV cache at the end of generation"),
        _M("roofline_frac", "fraction", True, "case", "decode speed over the memory-bandwidth roofline"),
        _M("analysis_tokens", "tokens", False, "case", "tokens on the harmony analysis channel"),
        _M("final_tokens", "tokens", False, "case", "tokens on the harmony final channel"),
        _M("time_to_final_s", "s", False, "case", "time to the first final-channel token"),
        _M("gpu_busy_frac", "fraction", True, "case", "GPU kernel time over wall time per decode step (torch.profiler, one extra repetition)"),
        _M("energy_j_per_tok", "J/tok", False, "case", "GPU energy per generated token (NVML energy counter, every GPU that holds weights)"),
        _M("avg_power_w", "W", False, "case", "average GPU power during a repetition"),
        _M("tpot_s", "s", False, "case", "time per output token after the first, of one request"),
        # Sustained load (--load closed|poisson|gamma): one value per case, from its request records.
        _M("request_throughput", "req/s", True, "case", "requests completed per second over the measured period"),
        _M("error_rate", "fraction", False, "case", "share of the counted requests that failed"),
        _M("goodput_frac", "fraction", True, "case", "share of the counted requests that succeeded within every --slo bound"),
        _M("goodput_req_s", "req/s", True, "case", "requests per second that succeeded within every --slo bound"),
        _M("ttft_p50_s", "s", False, "case", "time to first token over the requests, median"),
        _M("ttft_p90_s", "s", False, "case", "time to first token over the requests, 90th percentile"),
        _M("ttft_p99_s", "s", False, "case", "time to first token over the requests, 99th percentile"),
        _M("tpot_p50_s", "s", False, "case", "time per output token over the requests, median"),
        _M("tpot_p90_s", "s", False, "case", "time per output token over the requests, 90th percentile"),
        _M("tpot_p99_s", "s", False, "case", "time per output token over the requests, 99th percentile"),
        _M("e2e_p50_s", "s", False, "case", "end-to-end time over the requests, median"),
        _M("e2e_p90_s", "s", False, "case", "end-to-end time over the requests, 90th percentile"),
        _M("e2e_p99_s", "s", False, "case", "end-to-end time over the requests, 99th percentile"),
        _M("itl_all_p50_s", "s", False, "case", "every inter-token gap of every request, median"),
        _M("itl_all_p90_s", "s", False, "case", "every inter-token gap of every request, 90th percentile"),
        _M("itl_all_p99_s", "s", False, "case", "every inter-token gap of every request, 99th percentile"),
        _M("warmup_s", "s", False, "case", "wall time of the uncounted warm-up runs (torch.compile, autotuning and CUDA graph capture land here)"),
        _M("download_s", "s", False, "load", "download of the checkpoint"),
        _M("load_s", "s", False, "load", "from_pretrained"),
        _M("first_token_cold_s", "s", False, "load", "first generated token after load (compilation included)"),
        _M("load_alloc_bytes", "bytes", False, "load", "memory allocated after load"),
        _M("load_peak_bytes", "bytes", False, "load", "peak memory during load"),
    ]
}
CASE_METRICS = [m for m, s in METRICS.items() if s.phase == "case"]
LOAD_METRICS = [m for m, s in METRICS.items() if s.phase == "load"]
