"""Print what quantization buys a 1B language model on this machine's CPU.

Run: ``python tests/benchmarks/bench_quantized.py [--work DIR] [--new-tokens N] [--preset P]``.
It writes a TinyLlama-1.1B-shaped checkpoint with random weights (bf16 safetensors, the
``llm:tinyllama-1.1b`` configuration) into DIR once, then, each in a fresh cache folder:

- the time from that local checkpoint to a converged result on ORT GenAI int4 (one
  ``wattbench run``: the conversion with ORT GenAI's model builder included), and that of the
  same command again (the conversion cached);
- one generation run per configuration: torch fp32, bf16 and int8 (``llm:tinyllama-1.1b``,
  shape-only) and ORT GenAI int4 (the checkpoint), printing decode tokens/s, TTFT, TPOT, output
  tokens per joule (whatever the energy source is here: an estimate without sensors) and the
  worker's peak RSS.

It prints figures and asserts nothing (they depend on the machine and its load).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ARCH = "tinyllama-1.1b"


def build_checkpoint(folder: Path) -> Path:
    if (folder / "config.json").is_file():
        return folder
    import torch
    import transformers
    from wattbench.backends.models import llm_shapes

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.llm_fixtures import _tokenizer

    cfg = dict(llm_shapes.get(ARCH).hf_config)
    config = transformers.AutoConfig.for_model(cfg.pop("model_type"), **cfg)
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, safe_serialization=True)
    _tokenizer().save_pretrained(folder)
    return folder


def run(args: list[str], env: dict[str, str]) -> tuple[dict[str, Any], float]:
    cmd = [str(Path(sys.executable).parent / "wattbench"), "run", "--json", "--no-store", *args]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    try:
        doc = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}") from None
    if doc.get("error"):
        raise SystemExit(f"{' '.join(args)}: {doc['error']}")
    return doc["runs"][0], wall


def figures(r: dict[str, Any]) -> str:
    g = r.get("generation") or {}
    if r.get("status") != "done" or not g:
        return f"{r.get('status')}: {r.get('reason')}"
    phase = (g.get("phase_energy") or [{}])[0]
    tokens_j = phase["output_tokens"] / phase["energy_j"] if phase.get("energy_j") else float("nan")
    rss = (r.get("memory") or {}).get("peak_rss_bytes") or 0
    return (
        f"decode {g['decode_tokens_per_s']['value']:8.2f} tok/s  "
        f"TTFT {g['ttft_ns']['value'] / 1e6:8.1f} ms  TPOT {g['tpot_ns']['value'] / 1e6:7.1f} ms  "
        f"{tokens_j:6.2f} tok/J{' (est.)' if phase.get('estimate') else ''}  "
        f"peak RSS {rss / 2**30:5.2f} GiB  converged {r.get('converged')}  "
        f"calls {g.get('calls')}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "wb-bench-q")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--prompt-tokens", type=int, default=32)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--t-max", default="60", help="seconds of measurement per run")
    parser.add_argument("--skip", default="", help="comma-separated labels to leave out")
    a = parser.parse_args()
    t0 = time.perf_counter()
    ckpt = build_checkpoint(a.work / "tinyllama-1.1b-random")
    print(f"checkpoint {ckpt} ready in {time.perf_counter() - t0:.1f} s")
    common = [
        "--scenario", "generation", "--preset", a.preset, "--t-max", a.t_max,
        "--no-idle", "--no-memory",
        "--prompt-tokens", str(a.prompt_tokens), "--new-tokens", str(a.new_tokens),
    ]  # fmt: skip
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(dir=a.work) as cache, tempfile.TemporaryDirectory() as data:
        env.update(WATTBENCH_CACHE_DIR=cache, WATTBENCH_DATA_DIR=data)
        genai = ["--model", str(ckpt), "--runtime", "ortgenai", "--precision", "int4", *common]
        skip = set(filter(None, a.skip.split(",")))
        for precision in ("fp32", "bf16", "int8"):
            if f"torch-{precision}" in skip:
                continue
            args = ["--model", f"llm:{ARCH}", "--runtime", "torch", "--precision", precision]
            r, wall = run([*args, *common], env)
            print(f"torch {precision:5s} {figures(r)}  ({wall:.0f} s)", flush=True)
        r, wall = run(genai, env)
        print(
            f"checkpoint -> ORT GenAI int4 result, conversion included: {wall:7.1f} s", flush=True
        )
        print(f"  {figures(r)}", flush=True)
        r, wall = run(genai, env)
        print(f"the same command again (conversion cached):         {wall:7.1f} s")
        print(f"  {figures(r)}", flush=True)


if __name__ == "__main__":
    main()
