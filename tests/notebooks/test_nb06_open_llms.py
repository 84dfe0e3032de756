"""Notebook 06 beyond its graded cells: clear errors on bad input, the published configs, a widget that responds."""

import pytest
import torch

from archlab import llms, models

NB = "06_open_llms"


@pytest.fixture
def ns(executed):
    return dict(executed(NB)[1])


def test_parts_reject_wrong_shapes_naming_the_expected_shape(ns):
    with pytest.raises(ValueError, match=r"weight must have shape \(8\)"):
        ns["rms_norm"](torch.randn(2, 8), torch.ones(7))
    with pytest.raises(ValueError, match=r"x must have shape \(B, H, L, d\)"):
        ns["apply_rope"](torch.randn(2, 5, 8), torch.arange(5))
    with pytest.raises(ValueError, match="even head width"):
        ns["apply_rope"](torch.randn(1, 2, 5, 7), torch.arange(5))
    with pytest.raises(ValueError, match=r"positions must have shape \(L\) = \(5\)"):
        ns["apply_rope"](torch.randn(1, 2, 5, 8), torch.arange(4))
    with pytest.raises(ValueError, match=r"positions must have shape \(B, L\) = \(1, 5\)"):
        ns["apply_rope"](torch.randn(1, 2, 5, 8), torch.zeros(3, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"k must have shape \(B, H_kv, L, d\)"):
        ns["repeat_kv"](torch.randn(2, 5, 8), 2)
    with pytest.raises(ValueError, match="positive int"):
        ns["repeat_kv"](torch.randn(1, 2, 5, 8), 0)
    with pytest.raises(ValueError, match=r"w_down must have shape \(D, I\) = \(8, 12\)"):
        ns["swiglu_mlp"](torch.randn(3, 8), torch.randn(12, 8), torch.randn(12, 8), torch.randn(8, 10))
    with pytest.raises(ValueError, match=r"x must have shape .*D\) = .*8\)"):
        ns["swiglu_mlp"](torch.randn(3, 6), torch.randn(12, 8), torch.randn(12, 8), torch.randn(8, 12))


def test_decoder_layer_names_missing_weights_and_bad_head_counts(ns):
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer

    cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_attention_heads=4, num_key_value_heads=2)
    p = dict(LlamaDecoderLayer(cfg, layer_idx=0).state_dict())
    layer = ns["decoder_layer"]
    with pytest.raises(ValueError, match="multiple of n_kv_heads"):
        layer(torch.randn(1, 3, 32), p, 4, 3)
    with pytest.raises(ValueError, match=r"self_attn.k_proj.weight must have shape"):
        layer(torch.randn(1, 3, 32), p, 4, 4)
    with pytest.raises(ValueError, match=r"x must have shape \(B, L, 32\)"):
        layer(torch.randn(1, 3, 16), p, 4, 2)
    del p["mlp.up_proj.weight"]
    with pytest.raises(ValueError, match="p lacks mlp.up_proj.weight"):
        layer(torch.randn(1, 3, 32), p, 4, 2)


def test_library_counts_match_the_published_figures(ns):
    """06 reads parameters and cache bytes off the library (04 and 01 grade computing them)."""
    total, active = ns["parameters_of"](llms.published_config("Mixtral-8x7B"))
    assert total == 46_702_792_704 and 12.8e9 < active < 13.0e9       # Jiang et al. 2024: 47B total, 13B active
    assert ns["parameters_of"](llms.published_config("Llama-3-8B")) == (8_030_261_248, 8_030_261_248)
    # Llama-3-8B: 2 (K, V) x 32 layers x 8 KV heads x 128 x 2 bytes per token, measured by transformers
    assert ns["cache_bytes_per_token"](llms.published_config("Llama-3-8B")) == 2 * 32 * 8 * 128 * 2
    assert "count_params" not in ns and "kv_bytes_per_token" not in ns, "06 no longer grades these (04 and 01 do)"


def test_published_configs_match_the_facts_file():
    c = llms.published_config("Qwen2-72B")
    assert (c.vocab_size, c.hidden_size, c.intermediate_size, c.num_hidden_layers,
            c.num_attention_heads, c.num_key_value_heads,
            c.tie_word_embeddings) == (152064, 8192, 29568, 80, 64, 8, False)
    assert llms.published_config("Qwen2-0.5B").tie_word_embeddings
    mix = llms.published_config("Mixtral-8x7B")
    assert (mix.num_local_experts, mix.num_experts_per_tok, mix.rope_parameters["rope_theta"]) == (8, 2, 1e6)
    assert llms.published_config("Llama-3-8B").rope_parameters["rope_theta"] == 500000.0
    assert "intermediate_size" in llms.differences_from_defaults("Llama-3-8B")
    assert llms.hub_id("Mixtral-8x7B") == "mistralai/Mixtral-8x7B-v0.1"
    with pytest.raises(ValueError, match="Known:"):
        llms.published_config("GPT-5")


def test_one_registry_holds_04s_models_too():
    """Jamba-v0.1, Mixtral-8x7B and Llama-2-7B (notebook 04, the figures) come from the same registry."""
    assert set(llms.JAMBA_TABLE1) | set(llms.FOUR) <= set(llms.PUBLISHED) and set(llms.PUBLISHED) <= set(llms.NOTES)
    llama2 = llms.published_config("Llama-2-7B")
    assert (llama2.num_key_value_heads, llama2.max_position_embeddings, llama2.rms_norm_eps,
            llama2.rope_parameters["rope_theta"]) == (32, 4096, 1e-5, 10000.0)
    jamba = llms.published_config("Jamba-v0.1")
    assert jamba.layers_block_type.count("attention") == 4 and jamba.max_position_embeddings == 262144
    assert not hasattr(jamba, "rope_parameters") or jamba.rope_parameters is None, "Jamba has no RoPE"
    mix = llms.published_config("Mixtral-8x7B")
    assert (mix.max_position_embeddings, mix.rms_norm_eps, mix.rope_parameters["rope_theta"]) == (32768, 1e-5, 1e6)
    assert (llms.hub_id("Jamba-v0.1") == "ai21labs/Jamba-v0.1"
            and llms.hub_id("Llama-2-7B") == "meta-llama/Llama-2-7b-hf")


def test_kv_cache_explorer_measures_by_default():
    from archlab import widgets
    from archlab.widgets import kv_cache

    cfg = models.make_config("llama", "tiny", num_key_value_heads=2)
    assert kv_cache.measured_bytes_per_token(cfg) == models.cache_bytes(cfg, 1)
    w = widgets.kv_cache_explorer({"tiny": cfg})
    # tiny Llama: 4 layers, head width 16, 16-bit values; MHA has 4 KV heads, the choice clamps to 2
    assert w.result["bytes_per_token"] == 2 * 4 * 2 * 16 * 2 and w.result["saving"] == 2


def test_kv_cache_explorer_responds_to_its_controls(ns):
    w = ns["explorer"]
    model, kv_heads, context = w.children[:3]
    first = dict(w.result)
    assert first["model"] == "Llama-3-8B" and first["kv_heads"] == 8 and first["saving"] == 4
    kv_heads.value = 1
    assert w.result["cache_bytes"] * 8 == first["cache_bytes"], "1 KV head: an eighth of 8"
    context.value = 131072
    assert w.result["cache_bytes"] == first["cache_bytes"] // 8 * 16
    model.value = "Llama-3-70B"
    kv_heads.value = 8
    assert w.result["saving"] == 8 and w.result["mha_cache_bytes"] == 64 * 80 * 2 * 128 * 2 * 131072
    kv_heads.value = 64
    assert w.result["saving"] == 1
