"""The GPU device check: ``python3 tests/gpu/device_check.py OUT_DIR [--budget-s S]``.

Meant for a bare NVIDIA GPU machine whose python already has CUDA torch, nvidia-ml-py, psutil
and rich; the project's other runtime dependencies come as wheel files in ``.whl/`` (see
``wheels.txt`` and ``fetch-wheels.sh``), and the package itself is laid out from the working tree
(no build, no network). Without an NVIDIA GPU and driver it stops at once, before anything is
installed or run, with one line saying so (exit 3) and a result file that says the same.

Each step runs in its own process with its own timeout inside one overall budget, and its
outcome (ok, failed and why, skipped for lack of time) is recorded, so one failure loses none of
the others. OUT_DIR receives device-check.json (every figure), device-check.txt (a summary),
device-check.log (each step's command and error output) and the raw JSON of the ``wattbench``
commands (devices.json, sensors.json, run.json). Exit: 0 all steps ok, 1 a step failed or was
skipped, 2 usage, 3 no NVIDIA GPU/driver.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from check_figures import (
    summarise_devices,
    summarise_run_output,
    summarise_sensors,
    summarise_training,
    summary_text,
)

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULT_JSON = "device-check.json"
SUMMARY_TXT = "device-check.txt"
LOG_TXT = "device-check.log"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_GPU = 0, 1, 2, 3
DEFAULT_BUDGET_S = 540.0
MIN_STEP_S = 10.0  # a step is skipped rather than started with less time than this
STOP_GRACE_S = 15.0  # after SIGTERM at a step's timeout, before SIGKILL
LOG_TAIL_CHARS = 6000
RUN_PRECISIONS = ("fp32", "bf16")
RUN_MODEL = "builtin:resnet50"
# the training step on a 1B-class shape-only architecture in bf16 (docs/training.md)
TRAIN_ARGS = (
    "run", "--model", "llm:tinyllama-1.1b", "--scenario", "training", "--device", "cuda:0",
    "--precision", "bf16", "--batch", "4", "--prompt-tokens", "1024", "--preset", "quick",
    "--no-memory",
)  # fmt: skip


# -- preflight -------------------------------------------------------------------------------


def preflight() -> tuple[dict[str, Any] | None, str | None]:
    """(what NVML says of the GPUs, None), or (None, why there is no usable NVIDIA GPU)."""
    try:
        import pynvml
    except ImportError:
        return None, (
            f"nvidia-ml-py (pynvml) is not installed for {sys.executable}, so no NVIDIA "
            "driver can be asked"
        )
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return None, f"NVML: {exc}"
    try:
        count = int(pynvml.nvmlDeviceGetCount())
        if count == 0:
            return None, "NVML sees no GPU"
        names = []
        for i in range(count):
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
            names.append(name.decode() if isinstance(name, bytes) else str(name))
        driver = pynvml.nvmlSystemGetDriverVersion()
        driver = driver.decode() if isinstance(driver, bytes) else str(driver)
    except pynvml.NVMLError as exc:
        return None, f"NVML: {exc}"
    finally:
        pynvml.nvmlShutdown()
    return {"gpus": names, "driver": driver}, None


# -- the package, laid out from the working tree ------------------------------------------------


def _source_dir(repo: Path, package: str, package_dir: dict[str, str]) -> Path:
    parts = package.split(".")
    for i in range(len(parts), 0, -1):
        key = ".".join(parts[:i])
        if key in package_dir:
            return repo / package_dir[key] / Path(*parts[i:])
    return repo / package_dir.get("", ".") / Path(*parts)


def build_layout(dest: Path, repo: Path = REPO) -> Path:
    """Copy the packages pyproject.toml names into ``dest`` as they are installed (app/ as
    wattbench, backends/ as wattbench.backends ...) with a dist-info carrying the entry points,
    so that ``PYTHONPATH=dest`` imports the working tree and finds its plugins."""
    conf = tomllib.loads((repo / "pyproject.toml").read_text(encoding="utf-8"))
    project, st = conf["project"], conf["tool"]["setuptools"]
    package_dir: dict[str, str] = st.get("package-dir", {})
    if dest.exists():
        shutil.rmtree(dest)
    for package in st["packages"]:
        src = _source_dir(repo, package, package_dir)
        target = dest.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if f.is_file() and f.suffix != ".pyc":
                shutil.copy2(f, target / f.name)
    info = dest / f"{project['name']}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n",
        encoding="utf-8",
    )
    groups = {"console_scripts": project.get("scripts", {}), **project.get("entry-points", {})}
    text = "".join(
        f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) + "\n"
        for group, entries in groups.items()
    )
    (info / "entry_points.txt").write_text(text, encoding="utf-8")
    return dest


def wheel_modules(path: Path = HERE / "wheels.txt") -> dict[str, str]:
    """Distribution name -> import name of what travels as a wheel (``wheels.txt``)."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 3 and words[1] == "wheel":
            out[words[0]] = words[2]
    return out


# -- running steps ---------------------------------------------------------------------------


@dataclass
class Context:
    out: Path
    work: Path
    python: str
    deadline: float
    env: dict[str, str] = field(default_factory=dict)
    steps: list[dict[str, Any]] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class Done:
    rc: int
    stdout: str
    stderr: str
    timed_out: bool


def run_command(ctx: Context, argv: list[str], timeout_s: float, name: str) -> Done:
    """Run ``argv`` in its own process group; at the timeout SIGTERM the group (the CLI then
    prints what it has), SIGKILL after a grace period. Its error output goes to the log. It
    runs in the work folder: metadata left in the tree (an egg-info) cannot shadow the layout's."""
    proc = subprocess.Popen(
        argv,
        cwd=ctx.work,
        env=ctx.env or None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
    with (ctx.out / LOG_TXT).open("a", encoding="utf-8") as log:
        log.write(f"== {name}: {' '.join(argv)}\n-- exit {proc.returncode}")
        log.write(f" (timed out after {timeout_s:.0f} s)\n" if timed_out else "\n")
        log.write(err[-LOG_TAIL_CHARS:] + "\n")
    return Done(proc.returncode, out, err, timed_out)


def _why(done: Done, timeout_s: float) -> str:
    if done.timed_out:
        return f"timed out after {timeout_s:.0f} s"
    lines = [ln for ln in done.stderr.strip().splitlines() if ln.strip()]
    return f"exit code {done.rc}" + (f": {lines[-1][:300]}" if lines else "")


def json_step(
    argv: list[str], read: Callable[[dict[str, Any]], dict[str, Any]], raw: str | None = None
) -> Callable[[Context, str, float], dict[str, Any]]:
    """A step that runs a command printing one JSON document and reads its figures."""

    def step(ctx: Context, name: str, timeout_s: float) -> dict[str, Any]:
        done = run_command(ctx, [ctx.python, *argv], timeout_s, name)
        if raw is not None and done.stdout.strip():
            (ctx.out / raw).write_text(done.stdout, encoding="utf-8")
        try:
            doc = json.loads(done.stdout)
        except ValueError:
            return {"ok": False, "reason": _why(done, timeout_s) + " (no JSON on stdout)"}
        figures = read(doc)
        if done.rc != 0 or done.timed_out:
            figures["ok"] = False
            figures["reason"] = "; ".join(
                x for x in (_why(done, timeout_s), figures.get("reason")) if x
            )
        return figures

    return step


def _wheels(ctx: Context, name: str, timeout_s: float) -> dict[str, Any]:
    modules = wheel_modules()
    check = [ctx.python, "-c", f"import {', '.join(modules.values())}"]
    if run_command(ctx, check, timeout_s, f"{name} (already importable?)").rc == 0:
        return {"ok": True, "installed": [], "note": "all importable without the wheels"}
    wheels = sorted(str(p) for p in (REPO / ".whl").glob("*.whl"))
    if not wheels:
        return {
            "ok": False,
            "reason": f"{', '.join(modules)} are missing and .whl/ holds no wheels: run "
            "`bash tests/gpu/fetch-wheels.sh` on the development machine and carry .whl",
        }
    site = ctx.work / "site"
    pip = [ctx.python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    pip += ["--no-cache-dir", "--upgrade", "--target", str(site), *wheels]
    done = run_command(ctx, pip, timeout_s, name)
    if done.rc != 0:
        return {"ok": False, "reason": "pip: " + _why(done, timeout_s)}
    done = run_command(ctx, check, timeout_s, f"{name} (importable now?)")
    installed = [Path(w).name for w in wheels]
    if done.rc != 0:
        return {"ok": False, "installed": installed, "reason": _why(done, timeout_s)}
    return {"ok": True, "installed": installed}


def _layout(ctx: Context, name: str, timeout_s: float) -> dict[str, Any]:
    dest = build_layout(ctx.work / "pkg")
    probe = (
        "import json, importlib.metadata as m, wattbench; print(json.dumps({'file': "
        "wattbench.__file__, 'runtimes': sorted(e.name for e in m.entry_points("
        "group='wattbench.runtimes')), 'power_sources': sorted(e.name for e in "
        "m.entry_points(group='wattbench.power_sources'))}))"
    )
    done = run_command(ctx, [ctx.python, "-c", probe], timeout_s, name)
    if done.rc != 0:
        return {"ok": False, "reason": _why(done, timeout_s)}
    found = json.loads(done.stdout)
    found["ok"] = found["file"].startswith(str(dest)) and "nvml" in found["power_sources"]
    if not found["ok"]:
        found["reason"] = f"wattbench imported from {found['file']}, not the layout {dest}"
    return found


def _cli(*args: str) -> list[str]:
    return ["-m", "wattbench.cli.main", *args]


def plan(ctx: Context) -> list[tuple[str, float, Callable[[Context, str, float], dict[str, Any]]]]:
    """(name, timeout, step) in order: the GPU is idle for the energy step's baseline."""
    probe = str(HERE / "gpu_probe.py")
    db = str(ctx.work / "runs.sqlite")
    run_args = ["run", "--model", RUN_MODEL, "--device", "cuda:0", "--batch", "8"]
    run_args += ["--precision", ",".join(RUN_PRECISIONS), "--preset", "quick", "--repeat", "1"]
    return [
        ("wheels", 90.0, _wheels),
        ("layout", 30.0, _layout),
        ("env", 60.0, json_step([probe, "env"], lambda d: d)),
        ("sensors", 60.0, json_step(_cli("sensors", "--json"), summarise_sensors, "sensors.json")),
        ("devices", 90.0, json_step(_cli("devices", "--json"), summarise_devices, "devices.json")),
        ("energy", 100.0, json_step([probe, "energy"], lambda d: d)),
        ("timing", 100.0, json_step([probe, "timing"], lambda d: d)),
        (
            "run",
            220.0,
            json_step(
                _cli("--db", db, *run_args, "--json"),
                lambda d: summarise_run_output(d, RUN_PRECISIONS),
                "run.json",
            ),
        ),
        (
            "training",
            150.0,
            json_step(_cli("--db", db, *TRAIN_ARGS, "--json"), summarise_training, "training.json"),
        ),
    ]


def run_steps(
    ctx: Context, steps: list[tuple[str, float, Callable[[Context, str, float], dict[str, Any]]]]
) -> None:
    for name, limit_s, step in steps:
        left = ctx.deadline - time.monotonic()
        record: dict[str, Any] = {"name": name}
        if left < MIN_STEP_S:
            why = f"out of time ({max(left, 0.0):.0f} s of the budget left)"
            record |= {"status": "skipped", "reason": why}
        else:
            timeout_s = min(limit_s, left)
            t0 = time.monotonic()
            try:
                figures = step(ctx, name, timeout_s)
            except Exception as exc:  # a step's own bug must not lose the other steps
                figures = {"ok": False, "reason": f"{type(exc).__name__}: {exc}"}
            ok = bool(figures.pop("ok", False))
            record |= {
                "status": "ok" if ok else "failed",
                "reason": figures.pop("reason", None),
                "seconds": round(time.monotonic() - t0, 1),
                "timeout_s": round(timeout_s),
                "figures": figures,
            }
        ctx.steps.append(record)
        why = f" ({record['reason']})" if record.get("reason") else ""
        print(f"device-check: {name}: {record['status']}{why}", flush=True)
        write_result(ctx, final=False)


# -- results ---------------------------------------------------------------------------------


def write_result(ctx: Context, final: bool, error: str | None = None) -> dict[str, Any]:
    """The result file and its summary, written after every step: a check stopped from
    outside leaves what it had (``finished`` false)."""
    doc = {
        "format": "wattbench.device-check",
        "format_version": 1,
        "finished": final,
        "gpu_found": error is None,
        "error": error,
        "ok": error is None and bool(ctx.steps) and all(s["status"] == "ok" for s in ctx.steps),
        **ctx.info,
        "steps": ctx.steps,
    }
    (ctx.out / RESULT_JSON).write_text(json.dumps(doc, indent=1, default=str), encoding="utf-8")
    (ctx.out / SUMMARY_TXT).write_text(summary_text(doc), encoding="utf-8")
    return doc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder for the results")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S)
    parser.add_argument("--work", type=Path, default=Path("/tmp/wattbench-device-check"))
    args = parser.parse_args(argv)
    start = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    ctx = Context(args.out, args.work, sys.executable, start + args.budget_s)
    ctx.info = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    found, why = preflight()
    if found is None:
        msg = f"no NVIDIA GPU/driver found ({why}); nothing was measured"
        write_result(ctx, final=True, error=msg)
        print(f"device-check: {msg}", file=sys.stderr)
        return EXIT_NO_GPU
    ctx.info["preflight"] = found
    ctx.work.mkdir(parents=True, exist_ok=True)
    paths = [str(ctx.work / "pkg"), str(ctx.work / "site"), os.environ.get("PYTHONPATH", "")]
    ctx.env = dict(os.environ) | {
        "PYTHONPATH": os.pathsep.join(p for p in paths if p),
        "PYTHONUNBUFFERED": "1",
        "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
        "XDG_DATA_HOME": str(ctx.work / "data"),  # the run store's spool stays in the work dir
    }
    run_steps(ctx, plan(ctx))
    ctx.info["total_s"] = round(time.monotonic() - start, 1)
    doc = write_result(ctx, final=True)
    print((ctx.out / SUMMARY_TXT).read_text(encoding="utf-8"), end="")
    return EXIT_OK if doc["ok"] else EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
