"""A runtime and a power source registered through Wattbench's entry point groups, as any
third-party plugin is (see the dist-info beside this file). Tests put this folder on sys.path.

``fake`` runs the built-in models' catalog entries without torch: one call spins the CPU for
a known time (200 µs per item at fp32, half at fp16; WATTBENCH_FAKE_ITEM_US changes it), so
the engine, the queue, the store and comparisons see real timings of known size. For the
generation scenario it is a decoder whose step spins that time per sequence and whose prefill
spins an eighth of it per prompt token, so generation figures come out of the real timing loop
with known sizes. With WATTBENCH_FAKE_SLEEP=1 a call, a prefill and a decode step sleep their
time instead of spinning (a server with a fixed service time that leaves the CPU and the
interpreter lock free, so concurrent streams really serve in parallel). ``fakeplug``
is a wall-socket meter of the CPU drawing a steady 42 W. Both are fake *input* to the real
code: the supervisor, the sampler and the figures are Wattbench's own.
"""

from __future__ import annotations

import importlib.util
import os
import time
from typing import Any

from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes.base import (
    Availability,
    DeviceInfo,
    DeviceMemory,
    RuntimeOptions,
)
from wattbench.backends.sensors.base import Domain, Reading, SourceContext, SourceDefaults
from wattbench.backends.sensors.common import STATUS_OK, DomainStatus
from wattbench.domain.errors import DeviceError, UnsupportedOptionError
from wattbench.domain.training import TrainingSummary, flops_per_token

PRECISIONS = ("fp32", "fp16")
PLUG_W = 42.0


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False


def _spin(ns: int) -> None:
    end = time.perf_counter_ns() + ns
    while time.perf_counter_ns() < end:
        pass


class FakeLoaded:
    def __init__(self, model: ModelEntry, options: RuntimeOptions) -> None:
        per_item_us = float(os.environ.get("WATTBENCH_FAKE_ITEM_US", "200"))
        scale = 0.5 if options.precision == "fp16" else 1.0
        self.call_ns = int(per_item_us * 1000 * scale * options.batch_size)
        self.items_per_call = options.batch_size
        self.input_shapes: tuple[tuple[str, tuple[int, ...], str], ...] = ()
        self.model = model
        self.options = options
        self.sleeps = os.environ.get("WATTBENCH_FAKE_SLEEP", "") == "1"

    def run_once(self) -> None:
        self.wait(self.call_ns)

    def wait(self, ns: int) -> None:
        if self.sleeps:
            time.sleep(ns / 1e9)
        else:
            _spin(ns)

    def synchronize(self) -> None:
        pass

    def close(self) -> None:
        pass

    def settings(self) -> dict[str, Any]:
        return {
            "runtime": "fake",
            "call_ns": self.call_ns,
            "precision": self.options.precision,
            "torch_importable": _importable("torch"),  # False where a test blocks it
        }

    def reset_peak_memory(self) -> None:
        pass

    def peak_memory(self) -> DeviceMemory:
        return DeviceMemory(notes=("the fake runtime allocates nothing",))


class FakeGenerator(FakeLoaded):
    """A decoder: reset (nothing), prefill (call_ns × prompt tokens / 8), decode (call_ns)."""

    def __init__(self, model: ModelEntry, options: RuntimeOptions) -> None:
        super().__init__(model, options)
        self.prefill_ns = self.call_ns * options.prompt_tokens // 8
        self.position = 0

    def reset(self) -> None:
        self.position = 0

    def prefill(self) -> None:
        self.wait(self.prefill_ns)
        self.position = self.options.prompt_tokens

    def decode_step(self) -> None:
        self.wait(self.call_ns)
        self.position += 1


class FakeTrainer(FakeLoaded):
    """A training step: call_ns per sequence of each micro-batch, on a device that holds
    WATTBENCH_FAKE_MEMORY_TOKENS tokens per micro-batch (a larger one runs out of memory, as a
    GPU's allocator does); its loss falls as 10 / (1 + steps)."""

    def __init__(self, model: ModelEntry, options: RuntimeOptions) -> None:
        super().__init__(model, options)
        self.per_sequence_ns = self.call_ns // max(options.batch_size, 1)
        self.capacity = int(os.environ.get("WATTBENCH_FAKE_MEMORY_TOKENS", "1000000000"))
        self.steps = 0
        self.losses: list[float] = []
        self.set_micro_batch(options.batch_size)

    def set_micro_batch(self, sequences: int) -> None:
        self.micro_batch = sequences
        self.items_per_call = sequences * self.options.grad_accum * self.options.prompt_tokens

    def release(self) -> None:
        pass

    def run_once(self) -> None:
        tokens = self.micro_batch * self.options.prompt_tokens
        if tokens > self.capacity:
            raise MemoryError(
                f"out of memory: a micro-batch of {tokens} tokens, the fake device holds "
                f"{self.capacity}"
            )
        self.wait(self.per_sequence_ns * self.micro_batch * self.options.grad_accum)
        self.steps += 1
        self.losses.append(10.0 / (1 + self.steps))

    def training_summary(self) -> TrainingSummary:
        return TrainingSummary(
            micro_batch=self.micro_batch,
            grad_accum=self.options.grad_accum,
            seq_len=self.options.prompt_tokens,
            activation_checkpointing=self.options.activation_checkpointing,
            parameters=1000,
            layers=2,
            width=64,
            flops_per_token=flops_per_token(1000, 2, 64, self.options.prompt_tokens),
            optimizer="none (fake)",
            loss_first=self.losses[0] if self.losses else None,
            loss_last=self.losses[-1] if self.losses else None,
            steps=self.steps,
            device_name="fake device",
        )


class FakeRuntime:
    name = "fake"
    formats = ("torch-module",)
    trains = True  # FakeTrainer

    def available(self) -> Availability:
        return Availability(True, "the test runtime is always there", "1.0")

    def devices(self) -> list[DeviceInfo]:
        return [
            DeviceInfo(
                id="cpu",
                kind="cpu",
                name="fake CPU",
                runtime=self.name,
                usable=True,
                reason="spins the host CPU",
                precisions=PRECISIONS,
            )
        ]

    def check(self, model: ModelEntry, device: str, options: RuntimeOptions) -> None:
        if device != "cpu":
            raise DeviceError(f"The fake runtime runs on the cpu only, not {device}.")
        if options.precision not in PRECISIONS:
            raise UnsupportedOptionError(
                f"The fake runtime runs {', '.join(PRECISIONS)}, not {options.precision}.",
                field="precision",
            )

    def load(self, model: ModelEntry, device: str, options: RuntimeOptions) -> FakeLoaded:
        self.check(model, device, options)
        if options.training:
            return FakeTrainer(model, options)
        return FakeGenerator(model, options) if options.generation else FakeLoaded(model, options)


class FakePlug(SourceDefaults):
    """A meter between the wall and the machine: the CPU at a steady PLUG_W."""

    name = "fakeplug"
    device_class = "cpu"

    @classmethod
    def open(cls, ctx: SourceContext) -> FakePlug:
        return cls()

    def __init__(self) -> None:
        self.domain = Domain(
            id="fakeplug:0",
            name="plug",
            device="cpu",
            source="fakeplug.power",
            scope="cpu-package",
            kind="power",
            unit="W",
            update_period_s=0.01,
            max_power_w=1000.0,
            label="fake wall meter",
        )
        self.statuses = [
            DomainStatus(
                source=self.name,
                id=self.domain.id,
                name="plug",
                device="cpu",
                status=STATUS_OK,
                path="test fixture",
                domain=self.domain,
            )
        ]

    def domains(self) -> list[Domain]:
        return [self.domain]

    def read(self) -> list[Reading]:
        return [Reading(self.domain.id, time.perf_counter_ns(), PLUG_W)]

    def close(self) -> None:
        pass
