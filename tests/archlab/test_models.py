"""Tests for archlab.models: every family builds, runs, generates, saves and loads offline."""

import pytest
import torch

from archlab import models
from archlab.models import (
    CONFIGS,
    ModelNotAvailableOffline,
    build_model,
    load,
    make_config,
    meta_model,
    n_parameters,
    save,
)

FAMILIES = sorted(CONFIGS)
MOE = {"jamba", "mixtral"}


def _prompt(vocab_size, length=6, seed=0):
    # (B, L) = (1, length); avoid ids 0..2 (pad/bos/eos in the tiny configs).
    return torch.randint(3, vocab_size, (1, length), generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", params=FAMILIES)
def tiny(request):
    return request.param, build_model(request.param, "tiny", seed=0)


def test_every_family_has_tiny_and_base():
    assert set(FAMILIES) == {"gpt2", "mamba", "rwkv", "jamba", "mixtral", "llama", "qwen2"}
    for family in FAMILIES:
        assert set(CONFIGS[family]) == {"tiny", "base"}


def test_tiny_forward_and_generate(tiny):
    family, model = tiny
    vocab = model.config.vocab_size
    ids = _prompt(vocab)
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], vocab)
    assert torch.isfinite(logits).all()
    out = model.generate(ids, max_new_tokens=3, min_new_tokens=3, do_sample=False)
    assert out.shape == (1, ids.shape[1] + 3)
    assert torch.equal(out[:, : ids.shape[1]], ids)


def test_tiny_is_tiny(tiny):
    family, model = tiny
    assert 50_000 < n_parameters(model) < 1_000_000, family
    assert model.config.vocab_size <= 1000
    assert not model.training


def test_save_load_round_trip_gives_identical_logits(tiny, tmp_path):
    family, model = tiny
    ids = _prompt(model.config.vocab_size, seed=1)
    folder = save(model, tmp_path / family)
    assert folder == tmp_path / family and any(folder.glob("*.safetensors"))
    loaded = load(folder)
    assert type(loaded) is type(model) and not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)


@pytest.mark.parametrize("family", ["gpt2", "mamba"])
def test_same_seed_same_weights_other_seed_other_weights(family):
    a, b, c = (build_model(family, seed=s) for s in (7, 7, 8))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_build_model_leaves_the_global_random_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    build_model("llama", seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_overrides_config_objects_and_dtype():
    cfg = make_config("gpt2", n_layer=1)
    assert cfg.n_layer == 1 and cfg.n_embd == CONFIGS["gpt2"]["tiny"]["n_embd"]
    model = build_model(cfg, dtype=torch.bfloat16)
    assert model.config.n_layer == 1
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert build_model("gpt2", n_head=2).config.n_head == 2


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("size", ["tiny", "base"])
def test_special_tokens_are_inside_the_vocabulary(family, size):
    cfg = make_config(family, size)
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
        token = getattr(cfg, key, None)
        assert token is not None and 0 <= token < cfg.vocab_size, (family, size, key, token)


def test_unknown_family_and_size_list_the_valid_ones():
    with pytest.raises(ValueError) as info:
        make_config("gpt5")
    assert all(family in str(info.value) for family in FAMILIES)
    with pytest.raises(ValueError) as info:
        make_config("gpt2", "huge")
    assert "tiny" in str(info.value) and "base" in str(info.value)


def _gpt2_params(cfg):
    # Counted by hand: embeddings + per block (attention, MLP, 2 LayerNorms) + final LayerNorm.
    # The lm_head is tied to the token embedding, so it adds nothing.
    d, inner = cfg.n_embd, 4 * cfg.n_embd
    block = (d * 3 * d + 3 * d) + (d * d + d) + (d * inner + inner) + (inner * d + d) + 2 * 2 * d
    return cfg.vocab_size * d + cfg.n_positions * d + cfg.n_layer * block + 2 * d


def test_n_parameters_counts_tied_weights_once():
    cfg = make_config("gpt2", "base")
    model = meta_model(cfg)
    assert model.lm_head.weight is model.transformer.wte.weight
    assert n_parameters(model) == _gpt2_params(cfg)


@pytest.mark.parametrize("family", FAMILIES)
def test_base_sizes_on_the_meta_device(family):
    model = meta_model(make_config(family, "base"))
    assert all(p.device.type == "meta" for p in model.parameters())
    n = n_parameters(model)
    low, high = (100e6, 200e6) if family in MOE else (100e6, 135e6)
    assert low <= n <= high, f"{family} base has {n:,} parameters, outside [{low:,.0f}, {high:,.0f}]"


def test_load_unknown_hub_id_offline_explains(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub_id = "archlab-tests/no-such-model-anywhere"
    with pytest.raises(ModelNotAvailableOffline) as info:
        load(hub_id)
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert hub_id in message
    assert "offline" in message and "--local-dir" in message and "build_model(" in message


def test_load_missing_local_folder_says_so(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        load(str(tmp_path / "not-saved-yet"))
    assert "not-saved-yet" in str(info.value)


def _rwkv_state_dict_and_logits(**overrides):
    model = build_model("rwkv", seed=0, **overrides)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = _prompt(model.config.vocab_size)
    with torch.no_grad():
        first = model(ids).logits
        second = model(ids).logits
    after = model.state_dict()
    return before, after, first, second


def test_rwkv_weights_and_logits_do_not_change_on_first_forward():
    assert make_config("rwkv").rescale_every == 0
    before, after, first, second = _rwkv_state_dict_and_logits()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert torch.equal(first, second)


def test_rwkv_rescale_trap_is_real():
    # Control for the test above: with rescaling on, the first eval forward edits weights in place.
    before, after, _, _ = _rwkv_state_dict_and_logits(rescale_every=2)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "expected rescale_every=2 to modify weights in place"


class _FakeFromPretrained:
    """Stands in for AutoModelForCausalLM.from_pretrained and records how it was called."""

    def __init__(self, result=None, error=None):
        self.calls, self.result, self.error = [], result, error

    def __call__(self, name, **kw):
        self.calls.append((name, kw))
        if self.error is not None:
            raise self.error
        return self.result


def test_offline_load_never_asks_the_network(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    fake = _FakeFromPretrained(error=OSError("not in the local cache"))
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", fake)
    with pytest.raises(ModelNotAvailableOffline):
        load("some-org/some-model")
    assert fake.calls == [("some-org/some-model", {"local_files_only": True})]


def test_online_hub_ids_are_passed_through(monkeypatch):
    for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    tiny_model = build_model("gpt2").train()
    fake = _FakeFromPretrained(result=tiny_model)
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", fake)
    assert load("openai-community/gpt2", revision="main") is tiny_model
    assert fake.calls == [("openai-community/gpt2", {"revision": "main"})]
    assert not tiny_model.training


def test_online_connection_failure_is_explained(monkeypatch):
    for flag in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    fake = _FakeFromPretrained(error=ConnectionError("Failed to resolve huggingface.co"))
    monkeypatch.setattr(models.AutoModelForCausalLM, "from_pretrained", fake)
    with pytest.raises(ModelNotAvailableOffline) as info:
        load("state-spaces/mamba-130m-hf")
    assert "state-spaces/mamba-130m-hf" in str(info.value)
    assert "Failed to resolve" in str(info.value)


@pytest.mark.parametrize("family, overrides", [("llama", dict(num_attention_heads=4, num_key_value_heads=2)),
                                               ("qwen2", {}), ("mamba", {}), ("jamba", {})])
@pytest.mark.parametrize("seq_len, batch", [(1, 1), (7, 3)])
def test_cache_bytes_on_the_meta_device_equals_a_real_cache(family, overrides, seq_len, batch):
    """models.cache_bytes (meta device, two short runs) = the cache a real model allocates."""
    from archlab.measure import tensor_bytes
    cfg = models.make_config(family, "tiny", **overrides)
    net = models.build_model(cfg, dtype=torch.float32)
    with torch.no_grad():
        out = net(torch.randint(3, cfg.vocab_size, (batch, seq_len)), use_cache=True)
    cache = getattr(out, "past_key_values", None) or getattr(out, "cache_params", None)
    assert models.cache_bytes(cfg, seq_len, batch=batch, dtype=torch.float32) == tensor_bytes(cache)


def test_cache_bytes_of_published_models_needs_no_memory():
    from archlab.llms import published_config
    jamba = models.cache_bytes(published_config("Jamba-v0.1"), 256 * 1024)
    mixtral = models.cache_bytes(published_config("Mixtral-8x7B"), 256 * 1024)
    assert mixtral == 32 * 2**30 and 4 * 2**30 < jamba < mixtral / 7
    with pytest.raises(ValueError, match="seq_len >= 1"):
        models.cache_bytes(published_config("Mixtral-8x7B"), 0)
    with pytest.raises(ValueError, match="does not run on the meta device"):
        models.cache_bytes(models.make_config("gpt2", "tiny"), 4)
