"""Tests for archlab.measure: timing protocol, peak memory, bytes held by tensors and caches."""

import statistics

import pytest
import torch

from archlab import measure
from archlab.measure import Timing, peak_memory, tensor_bytes, time_fn
from archlab.models import build_model

MiB = 2**20
FLOAT32 = 4  # bytes


def test_timing_str_is_readable():
    t = Timing(median=0.00321, times=[0.0032, 0.00321, 0.0033, 0.0031, 0.0035], warmup=2, repeat=5)
    assert str(t) == "median 3.21 ms over 5 runs (2 warm-up)"
    assert str(Timing(median=1.5, times=[1.5], warmup=0, repeat=1, what="forward")).startswith("forward: median 1.50 s")


class FakeClock:
    """A perf_counter that only moves when the timed function says so; logs every event."""

    def __init__(self):
        self.now, self.log = 0.0, []

    def perf_counter(self):
        self.log.append("clock")
        return self.now


def test_time_fn_warms_up_synchronizes_and_takes_the_median(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(measure.time, "perf_counter", clock.perf_counter)
    monkeypatch.setattr(measure, "synchronize", lambda device: clock.log.append(f"sync {device}"))
    durations = iter([100.0, 100.0, 0.5, 0.1, 0.9, 0.3, 5.0])  # two warm-up calls, then five timed

    def fn():
        clock.log.append("fn")
        clock.now += next(durations)

    timing = time_fn(fn, warmup=2, repeat=5, device="cpu", what="toy")
    expected_times = [0.5, 0.1, 0.9, 0.3, 5.0]
    assert timing.times == pytest.approx(expected_times)
    assert timing.median == pytest.approx(statistics.median(expected_times))
    assert (timing.warmup, timing.repeat, timing.what) == (2, 5, "toy")
    # the two warm-up calls run back to back and their time is discarded; then each timed run
    # is: sync, clock, fn, sync, clock (the clock waits for the device before reading the time)
    assert clock.log[:6] == ["sync cpu", "clock", "fn", "fn", "sync cpu", "clock"]
    assert clock.log[6:] == ["sync cpu", "clock", "fn", "sync cpu", "clock"] * 5


def test_time_fn_on_real_code_returns_sane_numbers():
    x = torch.randn(64, 64, generator=torch.Generator().manual_seed(0))
    timing = time_fn(lambda: x @ x, warmup=1, repeat=3)
    assert len(timing.times) == 3 and all(t >= 0 for t in timing.times)
    assert min(timing.times) <= timing.median <= max(timing.times)


def test_time_fn_rejects_zero_repeats():
    with pytest.raises(ValueError):
        time_fn(lambda: None, repeat=0)


N64 = 64 * MiB // FLOAT32  # elements in a 64 MiB float32 tensor


def _two_alive():
    a = torch.ones(N64)
    b = torch.ones(N64)  # a is still alive here
    return float(a[0] + b[0])


def _one_after_the_other():
    total = 0.0
    for _ in range(2):
        a = torch.ones(N64)
        total += float(a[0])
        del a
    return total


def test_peak_memory_sees_two_live_tensors():
    result, peak = peak_memory(_two_alive)
    assert result == 2.0
    assert 128 * MiB <= peak <= 140 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_peak_memory_of_sequential_allocations_is_one_tensor():
    result, peak = peak_memory(_one_after_the_other)
    assert result == 2.0
    assert 64 * MiB <= peak <= 70 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_peak_memory_is_relative_to_what_existed_before():
    held = [torch.ones(N64 // 4)]  # 16 MiB allocated before fn starts

    def free_old_then_allocate_small():
        held.clear()  # frees 16 MiB: the running total goes below zero
        return torch.ones(1024).sum().item()

    result, peak = peak_memory(free_old_then_allocate_small)
    assert result == 1024.0
    assert 0 <= peak < 1 * MiB


def test_tensor_bytes_counts_each_storage_once():
    t = torch.zeros(10)  # 40 bytes
    u = torch.zeros(3, dtype=torch.float64)  # 24 bytes
    assert tensor_bytes(t) == t.numel() * t.element_size()
    assert tensor_bytes([t, t, t[2:5], t.view(2, 5)]) == 10 * FLOAT32
    assert tensor_bytes({"a": (t, [u]), "b": None, "c": 3}) == 10 * FLOAT32 + 3 * 8

    class Holder:
        def __init__(self):
            self.keys, self.values, self.name = [t], {0: u}, "cache"
            self.me = self  # cycles must not loop forever

    assert tensor_bytes(Holder()) == 10 * FLOAT32 + 3 * 8


def _forward(family, batch, length):
    model = build_model(family, "tiny", seed=0)
    ids = torch.randint(3, model.config.vocab_size, (batch, length), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model.config, model(ids, use_cache=True)


def test_tensor_bytes_of_a_gpt2_kv_cache():
    B, L = 2, 7
    cfg, out = _forward("gpt2", B, L)
    head_dim = cfg.n_embd // cfg.n_head
    expected = 2 * cfg.n_layer * B * cfg.n_head * L * head_dim * FLOAT32  # keys and values, every layer
    assert tensor_bytes(out.past_key_values) == expected


def test_tensor_bytes_of_a_mamba_state_does_not_grow_with_length():
    B = 2
    for L in (5, 11):
        cfg, out = _forward("mamba", B, L)
        # per layer: a conv window (B, E, conv_kernel) and an SSM state (B, E, state_size)
        expected = cfg.num_hidden_layers * B * cfg.intermediate_size * (cfg.conv_kernel + cfg.state_size) * FLOAT32
        assert tensor_bytes(out.cache_params) == expected


def test_tensor_bytes_of_an_rwkv_state():
    B, L = 2, 5
    cfg, out = _forward("rwkv", B, L)
    expected = 5 * B * cfg.hidden_size * cfg.num_hidden_layers * FLOAT32  # 5 tensors (B, D, n_layer)
    assert tensor_bytes(out.state) == expected


def test_tensor_bytes_of_a_jamba_hybrid_cache():
    B, L = 2, 7
    cfg, out = _forward("jamba", B, L)
    n_attn = sum(i % cfg.attn_layer_period == cfg.attn_layer_offset for i in range(cfg.num_hidden_layers))
    n_mamba = cfg.num_hidden_layers - n_attn
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    inner = cfg.mamba_expand * cfg.hidden_size
    kv = 2 * n_attn * B * cfg.num_key_value_heads * L * head_dim  # grows with L
    state = n_mamba * B * inner * (cfg.mamba_d_conv + cfg.mamba_d_state)  # does not
    assert tensor_bytes(out.past_key_values) == (kv + state) * FLOAT32


def test_tensor_bytes_of_a_model_is_its_parameters_and_buffers():
    model = build_model("gpt2")
    storages = {p.untyped_storage().data_ptr(): p.untyped_storage().nbytes()
                for p in list(model.parameters()) + list(model.buffers())}
    assert tensor_bytes(model) == sum(storages.values())
