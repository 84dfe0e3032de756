"""Small and GPT-2-small-sized language models, built from config classes (no downloads).

Every model in the workbook comes from :func:`build_model`: a Hugging Face
config object filled with the numbers in :data:`CONFIGS`, turned into random
weights by ``AutoModelForCausalLM.from_config``. Nothing is fetched from the
internet; :func:`load` reads weights a student saved or downloaded earlier.

Glossary
--------
family
    An architecture: "gpt2" (Transformer), "mamba" (selective state space),
    "rwkv" (linear-attention RNN), "jamba" (Mamba + attention + MoE),
    "mixtral" (Transformer with mixture-of-experts MLPs), "llama", "qwen2".
size
    "tiny": a few hundred thousand parameters, a forward takes milliseconds on
    a CPU. "base": about GPT-2 small (~124M parameters; ~100-200M in total
    for the MoE models, of which only a part is used per token).
MoE (mixture of experts)
    Several MLPs ("experts") per layer; a router sends each token to the
    top-k of them, so total parameters >> parameters used per token.
GQA (grouped-query attention)
    Fewer key/value heads than query heads (``num_key_value_heads``).
meta device
    A fake device: tensors have shapes and dtypes but no memory, so a model
    of any size can be "built" instantly to count its parameters.
tied embeddings
    The output layer (lm_head) reuses the input embedding matrix.
"""

import copy
import os
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    GPT2Config,
    JambaConfig,
    LlamaConfig,
    MambaConfig,
    MixtralConfig,
    PretrainedConfig,
    Qwen2Config,
    RwkvConfig,
)

CONFIG_CLASSES = {
    "gpt2": GPT2Config,
    "mamba": MambaConfig,
    "rwkv": RwkvConfig,
    "jamba": JambaConfig,
    "mixtral": MixtralConfig,
    "llama": LlamaConfig,
    "qwen2": Qwen2Config,
}

# Special tokens must be ids INSIDE the vocabulary (transformers warns otherwise).
TINY_TOKENS = dict(vocab_size=256, pad_token_id=0, bos_token_id=1, eos_token_id=2)
BASE_TOKENS = dict(vocab_size=32000, pad_token_id=0, bos_token_id=1, eos_token_id=2)

# RWKV's `rescale_every=N` makes the model divide some weights by 2 every N layers
# IN PLACE the first time it runs a forward in eval mode (and multiply them back
# in train mode). It is an fp16 overflow trick, but it silently changes the
# weights you just saved, compared or counted, so the workbook turns it off.
RWKV_NO_RESCALE = dict(rescale_every=0)

# family -> size -> config keyword arguments. Edit here, or pass overrides.
CONFIGS = {
    "gpt2": {
        "tiny": dict(**TINY_TOKENS, n_positions=256, n_embd=64, n_layer=4, n_head=4),
        # GPT-2 small: 124M parameters (lm_head tied to the token embedding).
        "base": dict(vocab_size=50257, bos_token_id=50256, eos_token_id=50256, pad_token_id=50256,
                     n_positions=1024, n_embd=768, n_layer=12, n_head=12),
    },
    "mamba": {
        "tiny": dict(**TINY_TOKENS, hidden_size=64, num_hidden_layers=4, state_size=16, expand=2),
        # Mamba-130m: 24 layers of width 768, GPT-NeoX vocabulary, tied embeddings.
        "base": dict(vocab_size=50280, pad_token_id=1, bos_token_id=0, eos_token_id=0,
                     hidden_size=768, num_hidden_layers=24, state_size=16, expand=2),
    },
    "rwkv": {
        "tiny": dict(**TINY_TOKENS, **RWKV_NO_RESCALE, context_length=256, hidden_size=64,
                     attention_hidden_size=64, intermediate_size=256, num_hidden_layers=4),
        # RWKV-4-169m widths (12 layers x 768). The released model unties its
        # output head (169M); we tie it so "base" matches GPT-2 small (~124M).
        "base": dict(vocab_size=50277, pad_token_id=1, bos_token_id=0, eos_token_id=0,
                     **RWKV_NO_RESCALE, context_length=1024, hidden_size=768, attention_hidden_size=768,
                     intermediate_size=3072, num_hidden_layers=12, tie_word_embeddings=True),
    },
    "jamba": {
        # 4 layers: attention at layer 2, Mamba elsewhere; MoE MLP at layers 1 and 3.
        "tiny": dict(**TINY_TOKENS, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                     num_attention_heads=4, num_key_value_heads=2, num_experts=4, num_experts_per_tok=2,
                     attn_layer_period=4, attn_layer_offset=2, expert_layer_period=2, expert_layer_offset=1,
                     mamba_d_state=16, mamba_d_conv=4, mamba_expand=2, mamba_dt_rank=4,
                     max_position_embeddings=256),
        # 8 layers, 1 attention : 3 Mamba, 8 experts (top-2) every other layer.
        "base": dict(**BASE_TOKENS, hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                     num_attention_heads=8, num_key_value_heads=4, num_experts=8, num_experts_per_tok=2,
                     attn_layer_period=4, attn_layer_offset=2, expert_layer_period=2, expert_layer_offset=1,
                     mamba_d_state=16, mamba_d_conv=4, mamba_expand=2, mamba_dt_rank=32,
                     max_position_embeddings=2048),
    },
    "mixtral": {
        "tiny": dict(**TINY_TOKENS, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                     num_experts_per_tok=2, max_position_embeddings=256),
        # 8 experts (top-2) in every layer.
        "base": dict(**BASE_TOKENS, hidden_size=512, intermediate_size=1024, num_hidden_layers=8,
                     num_attention_heads=8, num_key_value_heads=4, num_local_experts=8,
                     num_experts_per_tok=2, max_position_embeddings=2048),
    },
    "llama": {
        "tiny": dict(**TINY_TOKENS, hidden_size=64, intermediate_size=192, num_hidden_layers=4,
                     num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=256),
        # GPT-2-small widths with Llama parts (RMSNorm, RoPE, SwiGLU MLP).
        "base": dict(**BASE_TOKENS, hidden_size=768, intermediate_size=2048, num_hidden_layers=12,
                     num_attention_heads=12, num_key_value_heads=12, max_position_embeddings=2048,
                     tie_word_embeddings=True),
    },
    "qwen2": {
        "tiny": dict(**TINY_TOKENS, hidden_size=64, intermediate_size=192, num_hidden_layers=4,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256),
        # Like "llama" plus Qwen2's q/k/v biases and GQA (12 query heads, 4 kv heads).
        # Real Qwen2 has 151,936 tokens: at width 768 that embedding alone is 117M.
        "base": dict(**BASE_TOKENS, hidden_size=768, intermediate_size=2560, num_hidden_layers=12,
                     num_attention_heads=12, num_key_value_heads=4, max_position_embeddings=2048,
                     tie_word_embeddings=True),
    },
}


class ModelNotAvailableOffline(RuntimeError):
    """Raised by :func:`load` when hub weights are asked for but cannot be fetched."""


def make_config(family, size="tiny", **overrides):
    """Return the transformers config for ``family`` at ``size``, with ``overrides`` applied."""
    if family not in CONFIGS:
        raise ValueError(f"Unknown family {family!r}. Valid families: {', '.join(CONFIGS)}.")
    if size not in CONFIGS[family]:
        raise ValueError(f"Unknown size {size!r} for {family!r}. Valid sizes: {', '.join(CONFIGS[family])}.")
    kwargs = {**CONFIGS[family][size], **overrides}
    return CONFIG_CLASSES[family](**kwargs)


def _as_config(family_or_config, size, overrides):
    if isinstance(family_or_config, PretrainedConfig):
        cfg = copy.deepcopy(family_or_config)
        for key, value in overrides.items():
            setattr(cfg, key, value)
        return cfg
    return make_config(family_or_config, size, **overrides)


def build_model(family_or_config, size="tiny", seed=0, device="cpu", dtype=torch.float32, **overrides):
    """Random-weight causal LM for a family name (or a config object), in eval mode.

    The same ``seed`` always gives the same weights.
    """
    cfg = _as_config(family_or_config, size, overrides)
    with torch.random.fork_rng(devices=[]):  # leave the caller's random stream untouched
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(cfg)
    return model.to(device=device, dtype=dtype).eval()


def meta_model(config):
    """The model for ``config`` built on the meta device: shapes only, no memory used."""
    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def n_parameters(model):
    """Number of parameters; a tied weight (e.g. GPT-2's lm_head = wte) counts once."""
    seen, total = set(), 0
    for _, p in model.named_parameters(remove_duplicate=False):
        if id(p) not in seen:  # tied weights are the same Parameter object
            seen.add(id(p))
            total += p.numel()
    return total


def _storage_bytes(obj):
    """Bytes of every tensor reachable from obj (meta tensors included: numel x element size)."""
    seen, total, stack = set(), 0, [obj]
    while stack:
        item = stack.pop()
        if id(item) in seen or item is None or isinstance(item, (str, bytes, int, float, bool, type)):
            continue
        seen.add(id(item))
        if isinstance(item, torch.Tensor):
            total += item.numel() * item.element_size()
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif hasattr(item, "__dict__") and not callable(item):
            stack.extend(vars(item).values())
    return total


def _without_experts(config):
    """The same model with dense MLPs: the cache depends only on the attention and Mamba layers,
    and MoE routing (data-dependent indexing) cannot run on the meta device."""
    cfg = copy.deepcopy(config)
    if cfg.model_type == "jamba":
        cfg.num_experts = 1
    elif cfg.model_type == "mixtral":
        from transformers import MistralConfig  # Mixtral = Mistral with MoE MLPs
        cfg = MistralConfig(**{k: v for k, v in cfg.to_dict().items() if k not in ("model_type", "architectures")})
    return cfg


def cache_bytes(config, seq_len, batch=1, dtype=torch.float16):
    """Bytes of the cache that transformers' own model for ``config`` keeps after ``seq_len`` tokens.

    Measured, not computed: the model is built on the meta device (shapes only, no memory), run
    on ``batch`` sequences of 1 and of 2 tokens with ``use_cache=True``, and the tensors of the
    cache it returns are added up (``dtype``: float16 as models are served). A cache holds a fixed
    part (Mamba states) plus the same amount per token (keys and values), so the two runs give it
    at any length without running ``seq_len`` tokens. MoE MLPs are replaced by dense ones for the
    run: they keep nothing in the cache.
    """
    if seq_len < 1 or batch < 1:
        raise ValueError(f"need seq_len >= 1 and batch >= 1; got seq_len={seq_len}, batch={batch}")
    cfg = _without_experts(config)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    sizes = []
    for n in (1, 2):
        ids = torch.zeros(batch, n, dtype=torch.long, device="meta")
        try:
            with torch.no_grad():
                out = model(ids, use_cache=True)
        except (RuntimeError, NotImplementedError) as err:
            raise ValueError(f"cache_bytes: a {cfg.model_type!r} model does not run on the meta device "
                             f"({str(err).splitlines()[0][:120]}); measure a real model instead") from None
        cache = out.past_key_values if getattr(out, "past_key_values", None) is not None else out.cache_params
        sizes.append(_storage_bytes(cache))
    fixed_plus_one, per_token = sizes[0], sizes[1] - sizes[0]
    return fixed_plus_one + per_token * (seq_len - 1)


def save(model, path):
    """Save weights (safetensors) and config to the folder ``path``; return it as a Path."""
    path = Path(path)
    model.save_pretrained(path)
    return path


def _offline():
    flags = (os.environ.get("HF_HUB_OFFLINE", ""), os.environ.get("TRANSFORMERS_OFFLINE", ""))
    return any(f.strip().upper() in {"1", "ON", "YES", "TRUE"} for f in flags)


def load(path_or_id, device="cpu", **kw):
    """Load a causal LM from a local folder (or, when online, a hub id), in eval mode."""
    local = Path(path_or_id).expanduser()
    if local.is_dir():
        return AutoModelForCausalLM.from_pretrained(local, **kw).to(device).eval()
    text = str(path_or_id)
    if text.startswith((".", "/", "~")) or os.path.isabs(text) or text.count("/") > 1:
        raise FileNotFoundError(f"No model folder at {text!r} (looked at {local.resolve()}).")

    offline = _offline()
    if offline:
        kw = {**kw, "local_files_only": True}  # never touch the network; the HF cache still works
    try:
        model = AutoModelForCausalLM.from_pretrained(text, **kw)
    except OSError as err:  # transformers reports hub and network failures as OSError
        first_line = (str(err).splitlines() or [type(err).__name__])[0]
        reason = "HF_HUB_OFFLINE=1 is set" if offline else f"loading failed: {first_line}"
        raise ModelNotAvailableOffline(
            f"Cannot load {text!r} from the Hugging Face Hub ({reason}). This course runs offline. "
            f"To use these weights, on a machine with internet run\n"
            f"    hf download {text} --local-dir <folder>\n"
            f"(older huggingface_hub: huggingface-cli download {text} --local-dir <folder>), "
            f"copy <folder> here and pass it: load('<folder>'). "
            f"For random weights of the same architecture use build_model(family, size) instead. "
            f"(If you meant a local folder: there is none at {local.resolve()}.)"
        ) from err
    return model.to(device).eval()
