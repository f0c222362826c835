"""A model loaded on onnxruntime: one InferenceSession with its inputs and outputs bound once
(IO binding), so ``run_once`` is the session run alone; ORT returns only when its execution
provider is done."""

from __future__ import annotations

import logging
from typing import Any

from wattbench.backends.models import catalog
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.models.inputs import synthesize
from wattbench.backends.runtimes.base import (
    DeviceMemory,
    RuntimeOptions,
)
from wattbench.backends.runtimes.device_names import parse_device
from wattbench.backends.runtimes.gpu_memory import nvml_process_bytes
from wattbench.domain.errors import ShapeError

log = logging.getLogger(__name__)

_ORT_DEVICE = {"cuda": "cuda", "xpu": "cpu", "mps": "cpu", "cpu": "cpu"}  # where IO is bound


class OrtLoaded:
    """An InferenceSession with IO-bound seeded inputs; ``run_once`` is one session run."""

    def __init__(
        self,
        session: Any,
        model: ModelEntry,
        device: str,
        provider: str,
        index: int | None,
        options: RuntimeOptions,
        path: str,
    ) -> None:
        import onnxruntime as ort

        self.session = session
        self.model = model
        self.device = device
        self.provider = provider
        self.options = options
        self.path = path
        self.items_per_call = options.batch_size
        self._nvidia_index = index or 0 if provider == "CUDAExecutionProvider" else None
        shapes = catalog.concrete_inputs(
            model, options.batch_size, dict(options.dims), dict(options.input_shapes)
        )
        self.input_shapes = tuple(shapes)
        _check_session_inputs(session, shapes, model)
        self.arrays = synthesize(shapes, seed=options.seed, highs=catalog.highs(model))
        kind = parse_device(device)[0]
        ort_dev = (
            _ORT_DEVICE[kind]
            if provider in ("CUDAExecutionProvider", "ROCMExecutionProvider")
            else "cpu"
        )
        dev_id = index or 0
        binding = session.io_binding()
        self._values = []
        for name, arr in self.arrays.items():
            if ort_dev == "cpu":
                binding.bind_cpu_input(name, arr)
            else:
                value = ort.OrtValue.ortvalue_from_numpy(arr, ort_dev, dev_id)
                self._values.append(value)
                binding.bind_ortvalue_input(name, value)
        for out in session.get_outputs():
            binding.bind_output(out.name, ort_dev, dev_id)
        self.binding = binding
        run = session.run_with_iobinding

        def run_once() -> None:
            run(binding)

        self.run_once = run_once

    def synchronize(self) -> None:
        """Session runs are synchronous (ORT waits for its provider); nothing is pending."""

    def outputs(self) -> list[Any]:
        """One call's outputs as numpy arrays (for correctness checks, not timed)."""
        return list(self.session.run(None, self.arrays))

    def settings(self) -> dict[str, Any]:
        import onnxruntime as ort

        so = self.session.get_session_options()
        return {
            "runtime": "onnxruntime",
            "onnxruntime_version": ort.__version__,
            "device": self.device,
            "provider": self.provider,
            "providers": list(self.session.get_providers()),
            "provider_options": self.session.get_provider_options(),
            "precision": self.options.precision,
            "intra_op_threads": so.intra_op_num_threads or None,
            "intra_op_threads_note": None
            if so.intra_op_num_threads
            else "onnxruntime default (one per physical core)",
            "inter_op_threads": so.inter_op_num_threads,
            "graph_optimization": self.options.ort_graph_optimization,
            "execution_mode": "sequential",
            "io_binding": True,
            "model_file": self.path,
        }

    def reset_peak_memory(self) -> None:
        """onnxruntime keeps no peak to reset; NVML's figure is a snapshot."""

    def peak_memory(self) -> DeviceMemory:
        notes = [f"torch memory peaks: n/a ({self.provider} does not allocate through torch)"]
        if self._nvidia_index is None:
            notes.append("GPU process memory: n/a (not an NVIDIA GPU run)")
            return DeviceMemory(notes=tuple(notes))
        process, why = nvml_process_bytes(self._nvidia_index)
        return DeviceMemory(process_bytes=process, notes=(*notes, *([why] if why else [])))

    def close(self) -> None:
        self.binding = None
        self._values = []
        self.session = None


def _check_session_inputs(
    session: Any, shapes: list[tuple[str, tuple[int, ...], str]], model: ModelEntry
) -> None:
    """Refuse, before any run, inputs whose names, rank or fixed sizes the session rejects."""
    declared = {i.name: i for i in session.get_inputs()}
    given = {name for name, _, _ in shapes}
    missing = [n for n in declared if n not in given]
    if missing:
        raise ShapeError(f"{model.ref} also needs the inputs {', '.join(missing)}.")
    for name, shape, _ in shapes:
        if name not in declared:
            raise ShapeError(
                f"{model.ref} has no input named {name!r}; its inputs are {', '.join(declared)}."
            )
        want = declared[name].shape
        if len(want) != len(shape) or any(
            isinstance(w, int) and w != g for w, g in zip(want, shape, strict=False)
        ):
            raise ShapeError(
                f"Input {name!r} of {model.ref} is {list(want)}; the shape "
                f"{'x'.join(map(str, shape))} does not fit it."
            )
