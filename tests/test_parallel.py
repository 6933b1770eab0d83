"""Several devices: the layout logic, the from_pretrained arguments, what a loaded model's layout
records, the roofline of each layout, and the results fields."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from bench.backends.transformers import parallel as par
from bench.backends.transformers.parallel import ParallelPlan, plan_parallel
from bench.results import LoadRecord
from bench.results.errors import UserError
from bench.results.layout import DeviceShare, Layout
from diagnostics.models import GPT_OSS_20B, GPT_OSS_120B

# --------------------------------------------------------------------------------------------
# The layout the options ask for
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("device, devices, tp, ep, gpus, want", [
    ("cuda:0", None, None, None, 2, ParallelPlan("single", ("cuda:0",))),
    ("cpu", None, None, None, 0, ParallelPlan("single", ("cpu",))),
    ("cuda:0", "1", None, None, 2, ParallelPlan("single", ("cuda:1",))),
    ("cuda:0", "0,1", None, None, 2, ParallelPlan("pipeline", ("cuda:0", "cuda:1"))),
    ("cuda:0", " 1 , 0 ", None, None, 2, ParallelPlan("pipeline", ("cuda:1", "cuda:0"))),
    ("cuda:0", "all", None, None, 4, ParallelPlan("pipeline", ("cuda:0", "cuda:1", "cuda:2", "cuda:3"))),
    ("cuda:0", "cuda:2,cuda:3", None, None, 4, ParallelPlan("pipeline", ("cuda:2", "cuda:3"))),
    ("cuda:0", None, 2, None, 2, ParallelPlan("tensor-parallel", ("cuda:0", "cuda:1"), 2)),
    ("cuda:0", "2,3", None, 2, 4, ParallelPlan("expert-parallel", ("cuda:2", "cuda:3"), 2)),
    ("cuda:0", "all", None, 4, 4, ParallelPlan("expert-parallel", ("cuda:0", "cuda:1", "cuda:2", "cuda:3"), 4)),
    ("cpu", None, 2, None, 0, ParallelPlan("tensor-parallel", ("cpu", "cpu"), 2)),  # gloo on the CPU
])
def test_plans(device, devices, tp, ep, gpus, want):
    assert plan_parallel(device, devices, tp, ep, gpus) == want


@pytest.mark.parametrize("device, devices, tp, ep, gpus, words", [
    ("cuda:0", "0,x", None, None, 2, "GPU indices separated by commas"),
    ("cuda:0", "0,2", None, None, 2, "torch sees 2 GPU(s) (0 to 1)"),
    ("cuda:0", "1,1", None, None, 2, "twice"),
    ("cpu", "0,1", None, None, 0, "torch sees none"),
    ("cpu", "0,1", None, None, 2, "--device cpu"),
    ("cuda:0", None, 2, 2, 2, "pick one"),
    ("cuda:0", None, 1, None, 2, "--tp 2 or more"),
    ("cuda:0", None, None, 4, 2, "--ep 2 or fewer"),
    ("cuda:0", "0,1,2", 2, None, 4, "list 2 GPUs"),
    ("cpu", None, None, 0, 0, None),  # --ep 0 is no --ep
])
def test_plan_errors_say_what_to_do(device, devices, tp, ep, gpus, words):
    if words is None:
        assert plan_parallel(device, devices, tp, ep, gpus).kind == "single"
        return
    with pytest.raises(UserError) as e:
        plan_parallel(device, devices, tp, ep, gpus)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_a_rank_sees_its_own_gpu_numbered_from_zero():
    plan = plan_parallel("cuda:0", "2,3", None, 2, 4)
    assert plan.gpu_indices == [2, 3] and plan.distributed
    assert plan.for_rank(1) == ParallelPlan("expert-parallel", ("cuda:1",), 2)
    assert ParallelPlan("tensor-parallel", ("cpu", "cpu"), 2).for_rank(1).devices == ("cpu",)
    with pytest.raises(ValueError):
        ParallelPlan("sideways")


# --------------------------------------------------------------------------------------------
# from_pretrained arguments
# --------------------------------------------------------------------------------------------


def test_tp_on_the_mxfp4_path_is_refused_where_transformers_computes_it_wrong(monkeypatch):
    tp = ParallelPlan("tensor-parallel", ("cuda:0", "cuda:1"), 2)
    for quants in (["auto"], ["mxfp4"], ["bf16", "auto"]):
        with pytest.raises(UserError, match="--ep for MXFP4, or --tp with --quant bf16") as err:
            par.check_tp_weights_path(tp, quants, (5, 17))
        assert "transformers 5.17" in str(err.value)
    par.check_tp_weights_path(tp, ["bf16"], (5, 17))  # bf16 under --tp gave one GPU's tokens
    par.check_tp_weights_path(tp, ["auto"], par.TP_MXFP4_ROUTES_BY_EXPERTS)
    par.check_tp_weights_path(ParallelPlan("tensor-parallel", ("cpu", "cpu"), 2), ["auto"], (5, 17))  # CPU: bf16 anyway
    par.check_tp_weights_path(ParallelPlan("expert-parallel", ("cuda:0", "cuda:1"), 2), ["auto"], (5, 17))
    # without a version: the installed one, read only for a tensor-parallel layout on GPUs
    read = []
    monkeypatch.setattr("bench.backends.transformers.loading.transformers_major_minor", lambda: read.append(1) or (5, 17))
    par.check_tp_weights_path(ParallelPlan("single", ("cuda:0",)), ["auto"])
    assert not read
    with pytest.raises(UserError, match="transformers 5.17"):
        par.check_tp_weights_path(tp, ["auto"])
    assert read


def test_single_and_pipeline_arguments():
    assert par.placement_kwargs(ParallelPlan("single", ("cpu",))) == {"device_map": None}
    assert par.placement_kwargs(ParallelPlan("single", ("cuda:1",))) == {"device_map": {"": "cuda:1"}}
    free = {0: 100 << 30, 1: 50 << 30, 2: 10 << 30}
    kw = par.placement_kwargs(ParallelPlan("pipeline", ("cuda:0", "cuda:1")), free_bytes=free.__getitem__)
    # accelerate may use only the listed GPUs, each up to a share of its free memory
    assert kw["device_map"] == "auto"
    assert kw["max_memory"] == {0: int(0.9 * (100 << 30)), 1: int(0.9 * (50 << 30))}


@dataclasses.dataclass
class Config517:  # transformers 5.17: expert parallelism is a flag
    tp_size: int | None = None
    tp_plan: object = None
    enable_expert_parallel: bool = False


@dataclasses.dataclass
class Config524:  # transformers 5.21+: an expert-parallel size beside an empty tensor-parallel plan
    tp_size: int | None = None
    tp_plan: object = None
    enable_expert_parallel: bool = False
    ep_size: int | None = None


@pytest.mark.parametrize("cls", [Config517, Config524])
def test_distributed_config_in_each_releases_spelling(monkeypatch, cls):
    import transformers.distributed

    monkeypatch.setattr(transformers.distributed, "DistributedConfig", cls)
    tp = par.placement_kwargs(ParallelPlan("tensor-parallel", ("cuda:0",), 2))["distributed_config"]
    assert (tp.tp_size, tp.tp_plan) == (2, "auto")
    ep = par.distributed_config("expert-parallel", 4)
    if cls is Config524:
        assert (ep.tp_size, ep.ep_size, ep.tp_plan, ep.enable_expert_parallel) == (4, 4, None, False)
    else:
        assert (ep.tp_size, ep.enable_expert_parallel) == (4, True)


def test_the_installed_transformers_takes_both_configs():
    from transformers.distributed import DistributedConfig

    for kind in ("tensor-parallel", "expert-parallel"):
        assert isinstance(par.distributed_config(kind, 2), DistributedConfig)


# --------------------------------------------------------------------------------------------
# What a loaded model's layout records
# --------------------------------------------------------------------------------------------


class Shard:
    def is_shard(self):
        return True


class Replicate:
    def is_shard(self):
        return False


def _weight(placement=None):
    return SimpleNamespace(placements=[placement] if placement else None)


class FakeModule:
    def __init__(self, params=(), **attrs):
        self._params = list(params)
        self.__dict__.update(attrs)

    def parameters(self, recurse=True):
        return iter(self._params)


def _model(local_experts=32, lm_head=None, embed=None, attn=None, device_map=None, layers=36):
    experts = FakeModule(num_experts=local_experts)
    layer = SimpleNamespace(mlp=SimpleNamespace(experts=experts), self_attn=FakeModule([_weight(attn)]))
    return SimpleNamespace(
        config=SimpleNamespace(num_local_experts=32, num_hidden_layers=layers),
        model=SimpleNamespace(layers=[layer], embed_tokens=SimpleNamespace(weight=_weight(embed))),
        lm_head=SimpleNamespace(weight=_weight(lm_head)),
        hf_device_map=device_map or {},
        tp_plan={"lm_head": "colwise_gather_output"},
    )


def test_sharded_parts_are_read_from_the_model():
    assert par.sharded_parts(_model()) == []
    assert par.sharded_parts(_model(local_experts=16)) == ["experts"]  # MoEParamShard lowers num_experts
    assert par.sharded_parts(_model(lm_head=Shard(), embed=Shard())) == ["lm_head", "embed_tokens"]
    assert par.sharded_parts(_model(lm_head=Replicate(), attn=Shard())) == ["attention"]


def test_layers_per_device_and_plan():
    device_map = {"model.embed_tokens": 0, "model.layers.0": 0, "model.layers.1": 0, "model.layers.2": 1,
                  "model.norm": 1, "lm_head": 1, "model.rotary_emb": 0}
    assert par.layers_per_device(_model(device_map=device_map, layers=3)) == {"cuda:0": 2, "cuda:1": 1}
    # accelerate names a whole module when it fits on one device
    whole = {"model.embed_tokens": 0, "model.layers": 0, "model.norm": 1, "lm_head": 1}
    assert par.layers_per_device(_model(device_map=whole, layers=3)) == {"cuda:0": 3}
    assert par.layers_per_device(_model(device_map={"": "cuda:1"}, layers=2)) == {"cuda:1": 2}
    assert par.layers_per_device(_model()) == {}
    assert par.applied_plan(_model(), "tensor-parallel") == {"lm_head": "colwise_gather_output"}
    assert par.applied_plan(_model(), "pipeline") == {}


def test_describe_layout_on_the_cpu_and_gather_across_ranks():
    layout = par.describe_layout(_model(local_experts=16), ParallelPlan("expert-parallel", ("cpu",), 2))
    assert layout.kind == "expert-parallel" and layout.world_size == 2 and layout.sharded == ["experts"]
    assert layout.devices == [DeviceShare("cpu")]
    both = par.gather_layout(layout, lambda own: [own, [DeviceShare("cpu", load_alloc_bytes=7)]])
    assert [d.load_alloc_bytes for d in both.devices] == [None, 7]
    single = par.describe_layout(_model(), ParallelPlan("single", ("cpu",)))
    assert single.sharded == [] and single.plan == {} and par.gather_layout(single, None) is single


# --------------------------------------------------------------------------------------------
# The roofline of each layout
# --------------------------------------------------------------------------------------------


def _layout(kind, world=1, sharded=()):
    return Layout(kind=kind, world_size=world, sharded=list(sharded))


def test_roofline_bytes_per_token_follow_what_is_split():
    spec = GPT_OSS_120B
    for path in ("mxfp4", "bf16"):
        total = spec.bytes_per_token(path)
        assert par.roofline_bytes_per_token(spec, path, _layout("single")) == total
        assert par.roofline_bytes_per_token(spec, path, _layout("pipeline")) == total  # one GPU at a time
        # a tensor-parallel plan that shards nothing reads everything on every rank
        assert par.roofline_bytes_per_token(spec, path, _layout("tensor-parallel", 2)) == total
    experts = spec.num_layers * 4 * spec.expert_weight_params * 2
    ep = par.roofline_bytes_per_token(spec, "bf16", _layout("expert-parallel", 2, ["experts"]))
    assert ep == pytest.approx(spec.bytes_per_token("bf16") - experts / 2)
    head = spec.embedding_params * 2
    tp = par.roofline_bytes_per_token(spec, "bf16", _layout("tensor-parallel", 4, ["lm_head", "embed_tokens"]))
    assert tp == pytest.approx(spec.bytes_per_token("bf16") - head * 3 / 4)
    assert par.roofline_bytes_per_token(None, "bf16", _layout("single")) is None
    assert par.roofline_bytes_per_token(GPT_OSS_20B, None, _layout("single")) is None


# --------------------------------------------------------------------------------------------
# The results fields
# --------------------------------------------------------------------------------------------


def _layout_record() -> Layout:
    return Layout(
        kind="pipeline", world_size=1,
        devices=[DeviceShare("cuda:0", "NVIDIA H200", 150 << 30, 18, 118 << 30, 120 << 30),
                 DeviceShare("cuda:1", "NVIDIA H200", 150 << 30, 18, 117 << 30, 119 << 30)],
        roofline_bytes_per_token=10.27e9,
    )


def test_layout_round_trips_through_a_results_file(tmp_path):
    from bench.results import ModelInfo, Results, load, save

    res = Results(model=ModelInfo(id="synthetic:gpt-oss-120b", source="synthetic"))
    res.loads = [LoadRecord(quant="bf16", attn="auto", weights_path="bf16", device="cuda:0", layout=_layout_record(),
                            metrics={"load_alloc_bytes": float(235 << 30)}),
                 LoadRecord(quant="auto", attn="auto")]  # an older record: no layout
    save(res, tmp_path / "r.json")
    back = load(tmp_path / "r.json")
    assert back.loads[0].layout == _layout_record()
    assert back.loads[0].layout.devices[1].layers == 18 and not back.loads[0].layout.concurrent
    assert back.loads[1].layout is None


def test_schema_refuses_an_unknown_layout_kind(tmp_path):
    from bench.results import ModelInfo, Results, ResultsError, validate

    res = Results(model=ModelInfo(id="x", source="local"))
    res.loads = [LoadRecord(quant="auto", attn="auto", layout=_layout_record())]
    doc = res.to_dict()
    validate(doc)
    doc["loads"][0]["layout"]["kind"] = "sideways"
    with pytest.raises(ResultsError, match="layout"):
        validate(doc)


def test_an_old_results_file_without_layouts_still_loads():
    from pathlib import Path

    from bench.results import load

    fixtures = sorted((Path(__file__).parent / "fixtures").glob("*.json"))
    loaded = [load(p) for p in fixtures]
    assert loaded and all(x.layout is None for r in loaded for x in r.loads)
