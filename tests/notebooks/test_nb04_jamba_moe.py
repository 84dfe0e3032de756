"""Notebook 04 beyond its graded cells: clear errors on bad input, the widget responds, the
helpers in archlab.moe, and the committed Jamba figure matches its script."""

import importlib.util

import pytest
import torch

from archlab import llms, models
from archlab import moe as moelib
from autograder.paths import ROOT

NB = "04_jamba_moe"


@pytest.fixture
def ns(executed):
    return dict(executed(NB)[1])


def test_schedule_rejects_an_offset_not_below_its_period(ns):
    with pytest.raises(ValueError,
                       match=r"attn_offset must satisfy 0 <= attn_offset < attn_period; got offset 8, period 8"):
        ns["jamba_layer_schedule"](32, attn_period=8, attn_offset=8)
    with pytest.raises(ValueError, match=r"expert_offset"):
        ns["jamba_layer_schedule"](32, expert_period=2, expert_offset=-1)


def test_routing_and_moe_reject_wrong_shapes_naming_the_expected_shape(ns):
    with pytest.raises(ValueError, match=r"router_logits must have shape \(T, E\)"):
        ns["top_k_routing"](torch.randn(2, 3, 4), 2)
    with pytest.raises(ValueError, match=r"k must be between 1 and E = 4"):
        ns["top_k_routing"](torch.randn(3, 4), 5)
    moe = ns["MoE"](8, 16, 4, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(B, L, 8\)"):
        moe(torch.randn(2, 3, 6))
    with pytest.raises(ValueError, match=r"\(B, L, 8\)"):
        moe(torch.randn(3, 8))
    with pytest.raises(ValueError, match="k must be between 1 and n_experts"):
        ns["MoE"](8, 16, 4, 5)
    with pytest.raises(ValueError, match=r"router_logits must have shape \(T, 4\)"):
        ns["load_balancing_loss"](torch.randn(5, 3), 2, 4)


def test_explorer_widget_responds(ns):
    w = ns["explorer"]
    n_layers, attn_period, attn_offset, expert_period, expert_offset, context = w.children[:6]
    r = w.result
    assert r["attention_layers"] == 4 and r["moe_layers"] == 16
    # at the default 128K tokens one Jamba-v0.1 attention layer keeps 2 x 8 x 128 x 2 bytes x 131072 = 512 MiB
    assert r["kv_bytes"] == 2 * 2**30 and r["kv_bytes_all_attention"] == 16 * 2**30
    attn_period.value = 4                       # offset 4 is clamped to 3: layers 3, 7, ..., 31
    assert attn_offset.value == 3
    assert w.result["attention_layers"] == 8 and w.result["kv_bytes"] == 4 * 2**30
    context.value = 32768
    assert w.result["kv_bytes"] == 2**30
    attn_offset.value = 0
    expert_offset.value = 0
    n_layers.value = 12
    assert w.result["schedule"] == ns["jamba_layer_schedule"](12, 4, 0, 2, 0)
    # called directly with an offset >= its period, the explorer explains instead of drawing
    assert "error" in w.f(n_layers=8, attn_period=2, attn_offset=2)


def test_explorer_draws_the_students_schedule_and_nothing_else(ns):
    """The widget has no schedule of its own: it needs the student's function and shows what it returns."""
    from archlab import widgets
    with pytest.raises(TypeError, match="schedule function"):
        widgets.jamba_explorer()
    def every_other(n, ap, ao, ep, eo):
        return [("attention" if i % 2 else "mamba", "mlp") for i in range(n)]
    w = widgets.jamba_explorer(every_other)
    assert w.result["attention_layers"] == 16 and w.result["moe_layers"] == 0
    assert w.result["kv_bytes"] == 16 * 2**29          # one Jamba-v0.1 attention layer keeps 512 MiB at 128K tokens

    def unfinished(*args):
        raise NotImplementedError()
    assert "write jamba_layer_schedule first" in widgets.jamba_explorer(unfinished).result["error"]
    assert "failed" in widgets.jamba_explorer(lambda *a: [("attention",)]).result["error"]


def test_no_archlab_code_computes_the_schedule():
    """The schedule is an exercise: archlab (what students receive) must not hold the rule."""
    import ast

    def computes_the_rule(path):
        """Any comparison of `something % <a name or attribute with 'period' in it>` in the code (not the docs)."""
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare) and isinstance(node.left, ast.BinOp) and isinstance(node.left.op, ast.Mod):
                if "period" in ast.unparse(node.left.right):
                    return True
        return False

    hits = [str(p.relative_to(ROOT)) for p in (ROOT / "archlab").rglob("*.py") if computes_the_rule(p)]
    assert hits == [], f"archlab computes the layer schedule in {hits}"


def test_expert_mlp_is_the_library_mlp():
    from transformers.models.llama.modeling_llama import LlamaMLP
    mlp = moelib.expert_mlp(8, 12)
    assert isinstance(mlp, LlamaMLP) and mlp.gate_proj.bias is None
    assert tuple(mlp.gate_proj.weight.shape) == (12, 8) and tuple(mlp.down_proj.weight.shape) == (8, 12)


def test_copy_helpers_round_trip_and_match_mixtral(ns):
    MoE = ns["MoE"]
    torch.manual_seed(0)
    mine = MoE(8, 12, 4, 2)
    block = moelib.copy_moe_to_hf(mine, moelib.mixtral_moe_block(8, 12, 4, 2, seed=3))
    back = moelib.copy_hf_to_moe(block, MoE(8, 12, 4, 2))
    for (name, a), (_, b) in zip(mine.state_dict().items(), back.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.randn(2, 5, 8)
    with torch.no_grad():
        assert torch.allclose(mine(x)[0], block(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="experts"):
        moelib.copy_moe_to_hf(MoE(8, 12, 3, 2), block)


def test_expert_load_counts_every_slot():
    experts = torch.tensor([[0, 1], [1, 2], [1, 0]])
    assert moelib.expert_load(experts, 4).tolist() == [2, 3, 1, 0]
    with pytest.raises(TypeError):
        moelib.expert_load(torch.rand(3, 2), 4)


def test_published_configs_match_the_published_totals():
    # meta-device counts (no memory): Jamba ~52B, Mixtral ~46.7B, Llama-2-7B ~6.7B
    totals = {name: models.n_parameters(models.meta_model(llms.published_config(name))) for name in llms.JAMBA_TABLE1}
    assert 51e9 < totals["Jamba-v0.1"] < 53e9
    assert 46.5e9 < totals["Mixtral-8x7B"] < 46.9e9
    assert 6.6e9 < totals["Llama-2-7B"] < 6.8e9


def test_jamba_figure_is_in_sync_with_its_script(tmp_path):
    spec = importlib.util.spec_from_file_location("jamba_layers", ROOT / "figs" / "src" / "jamba_layers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.main(tmp_path / "a.png")
    mod.main(tmp_path / "b.png")
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes(), "the figure is not deterministic"
    assert (tmp_path / "a.png").read_bytes() == (ROOT / "figs" / "jamba_layers.png").read_bytes(), \
        "figs/jamba_layers.png differs from what figs/src/jamba_layers.py draws: run `make figs`"
