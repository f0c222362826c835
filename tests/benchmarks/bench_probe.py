"""Print what reading a model file in a probe process costs against reading it in-process.

Run: ``python tests/benchmarks/bench_probe.py [--rounds N]``. For a small ONNX file, a 21 MB
ONNX MatMul, the onnx package's SqueezeNet and ResNet-50 (copied) and a TorchScript MLP, it
prints the median of N uncached probes (``probe.read_facts``: spawn, imports, parse, reply), of
N in-process parses with the parser already imported (``files.read_facts``), and of N
in-process parses in a fresh interpreter, import included (what a first ``wattbench models
FILE`` paid before the probe). It prints figures and asserts nothing (timings depend on the
machine's load).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

COLD = (
    "import sys, time; t = time.perf_counter(); from pathlib import Path; "
    "from wattbench.backends.models import files; "
    "files.read_facts(Path(sys.argv[1]), sys.argv[2]); print(time.perf_counter() - t)"
)


def _median_ms(fn: Callable[[], float | None], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        inner = fn()
        times.append(inner if inner is not None else time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def _files(folder: Path) -> list[tuple[str, Path]]:
    import onnx
    import torch
    from onnx import TensorProto, helper
    from wattbench.backends.models import builtin, catalog

    tiny = folder / "tiny.onnx"
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 8])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    onnx.save(helper.make_model(graph), str(tiny))
    out = [("onnx", tiny)]
    import numpy as np
    from onnx import numpy_helper

    weights = numpy_helper.from_array(np.ones((2560, 2048), np.float32), "w")  # 21 MB
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2560])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2048])
    node = helper.make_node("MatMul", ["x", "w"], ["y"])
    matmul = folder / "matmul-21MB.onnx"
    onnx.save(helper.make_model(helper.make_graph([node], "g", [x], [y], [weights])), str(matmul))
    out.append(("onnx", matmul))
    root = catalog.zoo_dir()
    for name in ("squeezenet", "resnet50"):
        if root is not None and (root / f"light_{name}.onnx").is_file():
            path = folder / f"{name}.onnx"
            path.write_bytes((root / f"light_{name}.onnx").read_bytes())
            out.append(("onnx", path))
    script = folder / "mlp-small.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(builtin.build_module("mlp-small")).save(str(script))
    out.append(("torchscript", script))
    return out


def main() -> None:
    from wattbench.backends.models import files, probe

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; median of {args.rounds}"
    )
    print(f"{'file':18s} {'MB':>6s} {'probe ms':>9s} {'in-process ms':>14s} {'fresh ms':>9s}")
    with tempfile.TemporaryDirectory() as tmp:
        for fmt, path in _files(Path(tmp)):
            st = files.inspect_file(path, fmt)

            def probed(path: Path = path, fmt: str = fmt, st: os.stat_result = st) -> None:
                probe.forget()
                probe.read_facts(path, fmt, st)

            def cold(path: Path = path, fmt: str = fmt) -> float:
                done = subprocess.run(
                    [sys.executable, "-c", COLD, str(path), fmt],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                return float(done.stdout.split()[-1])

            files.read_facts(path, fmt)  # warm: the parser imported
            warm = _median_ms(lambda path=path, fmt=fmt: files.read_facts(path, fmt) and None,
                              args.rounds)  # fmt: skip
            size = st.st_size / 1e6
            print(
                f"{path.name:18s} {size:6.1f} {_median_ms(probed, args.rounds):9.0f} "
                f"{warm:14.0f} {_median_ms(cold, args.rounds):9.0f}"
            )


if __name__ == "__main__":
    main()
