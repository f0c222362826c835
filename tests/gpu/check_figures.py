"""The arithmetic and the reading of outputs behind the GPU device check (standard library only).

Everything here is plain data in, plain data out, so that it can be tested on a machine without
a GPU with made-up inputs; ``device_check.py`` and ``gpu_probe.py`` feed it real figures.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

# METHOD.md target 5: synchronised host timing and CUDA-event timing agree within 1 % + 10 µs
TIMING_REL_TOLERANCE = 0.01
TIMING_ABS_TOLERANCE_NS = 10_000.0
TIMING_MIN_CALL_NS = 1_000_000.0  # the target holds for calls of ≥ 1 ms
# ENERGY.md: the energy counter and integrated power agree within 5 % over a loaded window
ENERGY_TOLERANCE = 0.05

# NVML clock event ("throttle") reasons, by bit (nvmlClocksThrottleReason*)
THROTTLE_REASONS: tuple[tuple[int, str], ...] = (
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
    (0x100, "display_clock_setting"),
    (0x200, "board_limit"),
    (0x400, "reliability"),
)


def decode_throttle(mask: int) -> list[str]:
    """The names of the reasons set in an NVML clock event mask; unknown bits as hex."""
    names = [name for bit, name in THROTTLE_REASONS if mask & bit]
    known = 0
    for bit, _ in THROTTLE_REASONS:
        known |= bit
    if mask & ~known:
        names.append(f"unknown_0x{mask & ~known:x}")
    return names


def timing_agreement(host_ns: Sequence[float], event_ns: Sequence[float]) -> dict[str, Any]:
    """Host-synchronised against CUDA-event latencies of the same workload.

    They agree when the medians differ by at most 1 % of the event median + 10 µs; the target
    applies to calls of at least 1 ms, so a shorter workload fails as "too short to judge".
    """
    if len(host_ns) < 3 or len(event_ns) < 3:
        return {"ok": False, "reason": "fewer than 3 timings on a side"}
    host_med = float(statistics.median(host_ns))
    event_med = float(statistics.median(event_ns))
    diff = host_med - event_med
    tolerance = TIMING_REL_TOLERANCE * event_med + TIMING_ABS_TOLERANCE_NS
    out: dict[str, Any] = {
        "n_host": len(host_ns),
        "n_event": len(event_ns),
        "host_median_ns": host_med,
        "event_median_ns": event_med,
        "host_mean_ns": float(statistics.fmean(host_ns)),
        "event_mean_ns": float(statistics.fmean(event_ns)),
        "diff_ns": diff,
        "rel_diff": diff / event_med if event_med > 0 else None,
        "tolerance_ns": tolerance,
    }
    if event_med < TIMING_MIN_CALL_NS:
        out["ok"] = False
        out["reason"] = (
            f"the workload took {event_med / 1e6:.3f} ms by CUDA events: below the 1 ms the "
            "target applies to"
        )
    elif abs(diff) > tolerance:
        out["ok"] = False
        out["reason"] = (
            f"host {host_med / 1e6:.4f} ms vs CUDA events {event_med / 1e6:.4f} ms: "
            f"{abs(diff) / 1e3:.1f} µs apart, more than the {tolerance / 1e3:.1f} µs allowed"
        )
    else:
        out["ok"] = True
    return out


def energy_agreement(counter_j: float | None, integrated_j: float | None) -> dict[str, Any]:
    """The energy counter's difference against integrated power over the same window."""
    if counter_j is None or integrated_j is None:
        return {"ok": False, "reason": "no figure on one side", "ratio": None}
    if not integrated_j > 0 or not counter_j > 0:
        return {
            "ok": False,
            "reason": f"non-positive energy (counter {counter_j} J, integrated {integrated_j} J)",
            "ratio": None,
        }
    ratio = counter_j / integrated_j
    ok = abs(ratio - 1.0) <= ENERGY_TOLERANCE
    out: dict[str, Any] = {
        "ok": ok,
        "counter_j": counter_j,
        "integrated_j": integrated_j,
        "ratio": ratio,
    }
    if not ok:
        out["reason"] = f"counter / integrated power = {ratio:.4f}, outside 1 ± {ENERGY_TOLERANCE}"
    return out


# -- reading the command line's JSON -----------------------------------------------------------


def summarise_sensors(doc: Mapping[str, Any]) -> dict[str, Any]:
    """``wattbench sensors --json``: the NVML entries, ok when one GPU domain is readable."""
    nvml = [s for s in doc.get("sensors", []) if s.get("source") == "nvml"]
    keep = ("id", "device", "status", "method", "note", "why")
    rows = [{k: s.get(k) for k in keep} for s in nvml]
    readable = [r for r in rows if r["status"] == "ok"]
    out: dict[str, Any] = {"nvml": rows, "ok": bool(readable)}
    if not readable:
        whys = "; ".join(str(r["why"]) for r in rows if r["why"]) or "no NVML entry at all"
        out["reason"] = f"no readable NVML power domain ({whys})"
    return out


def summarise_devices(doc: Mapping[str, Any], device: str = "cuda:0") -> dict[str, Any]:
    """``wattbench devices --json``: what torch says of the GPU; ok when usable with bf16."""
    found = [
        d for d in doc.get("devices", []) if d.get("id") == device and d.get("runtime") == "torch"
    ]
    gpus = [
        {k: d.get(k) for k in ("id", "runtime", "usable", "reason", "name", "precisions")}
        for d in doc.get("devices", [])
        if d.get("kind") in ("cuda", "rocm")
    ]
    out: dict[str, Any] = {"gpus": gpus}
    if not found:
        out["ok"] = False
        out["reason"] = f"torch lists no {device}"
        return out
    d = found[0]
    out["details"] = d.get("details", {})
    if not d.get("usable"):
        out["ok"] = False
        out["reason"] = f"{device} is not usable with torch: {d.get('reason')}"
    elif "bf16" not in (d.get("precisions") or []):
        out["ok"] = False
        out["reason"] = f"{device} does not offer bf16 (precisions {d.get('precisions')})"
    else:
        out["ok"] = True
    return out


def _device_energy(run: Mapping[str, Any]) -> dict[str, Any] | None:
    device = (run.get("spec") or {}).get("device")
    figures = run.get("energy") or []
    for f in figures:  # the GPU's own domain first, then the run device's aggregate
        if f.get("device") == device and f.get("domain") not in ("device", "system"):
            return dict(f)
    for f in figures:
        if f.get("domain") == "device":
            return dict(f)
    return None


def summarise_run(run: Mapping[str, Any]) -> dict[str, Any]:
    """One run of ``wattbench run --json``: its figures, and whether the GPU path held up
    (done, measured by NVML's counter rather than an estimate, no cross-check mismatch)."""
    spec = run.get("spec") or {}
    latency = run.get("latency") or {}
    phases = run.get("phases") or {}
    throughput = run.get("throughput_items_per_s") or {}
    energy = _device_energy(run)
    out: dict[str, Any] = {
        "precision": spec.get("precision"),
        "model": spec.get("model"),
        "batch_size": spec.get("batch_size"),
        "status": run.get("status"),
        "reason": run.get("reason"),
        "mean_ms": _ms(latency.get("mean_ns")),
        "median_ms": _ms(latency.get("median_ns")),
        "rho": latency.get("rho"),
        "n": latency.get("n"),
        "throughput_items_per_s": throughput.get("value"),
        "converged": run.get("converged"),
        "flags": list(run.get("flags") or []),
        "harness_efficiency": phases.get("harness_efficiency"),
        "total_s": phases.get("total_s"),
        "energy": energy,
        "energy_summary": (run.get("energy_summary") or {}).get("text"),
    }
    problems = []
    if run.get("status") != "done":
        problems.append(f"run {run.get('status')}: {run.get('reason')}")
    if energy is None:
        problems.append("no energy figure for the GPU")
    else:
        if energy.get("method") != "counter-difference" or "estimate" in (
            energy.get("flags") or []
        ):
            problems.append(
                f"GPU energy by {energy.get('method')} from {energy.get('source')}, "
                "not NVML's energy counter"
            )
        if "cross_check_mismatch" in (energy.get("flags") or []):
            problems.append("the counter disagreed with integrated power (cross_check_mismatch)")
    out["ok"] = not problems
    if problems:
        out["reason"] = "; ".join(problems)
    return out


def summarise_run_output(doc: Mapping[str, Any], precisions: Sequence[str]) -> dict[str, Any]:
    """The whole ``wattbench run --json`` document: every asked precision ran and held up."""
    runs = [summarise_run(r) for r in doc.get("runs", [])]
    out: dict[str, Any] = {"exit_code": doc.get("exit_code"), "runs": runs}
    problems = []
    if doc.get("error"):
        problems.append(f"refused: {(doc.get('error') or {}).get('message')}")
    seen = {r["precision"] for r in runs}
    missing = [p for p in precisions if p not in seen]
    if missing:
        problems.append(f"no run in {', '.join(missing)}")
    problems += [f"{r['precision']}: {r['reason']}" for r in runs if not r["ok"]]
    out["ok"] = not problems
    if problems:
        out["reason"] = "; ".join(problems)
    return out


def _ms(ns: Any) -> float | None:
    return float(ns) / 1e6 if isinstance(ns, int | float) else None


# -- the readable summary ---------------------------------------------------------------------


def _num(x: Any, fmt: str, unit: str = "") -> str:
    return f"{x:{fmt}}{unit}" if isinstance(x, int | float) else "n/a"


def _env_line(f: Mapping[str, Any]) -> str:
    return (
        f"{f.get('name')}, driver {f.get('nvml_driver')}, torch {f.get('torch')} (CUDA "
        f"{f.get('torch_cuda')}), power limit {_num(f.get('power_limit_w'), '.0f', ' W')}, "
        f"max SM clock {_num(f.get('max_sm_clock_mhz'), '.0f', ' MHz')}"
    )


def _sensors_line(f: Mapping[str, Any]) -> str:
    return "; ".join(
        f"{r.get('id')} {r.get('status')} {r.get('method') or r.get('why') or ''}".strip()
        for r in f.get("nvml", [])
    )


def _devices_line(f: Mapping[str, Any]) -> str:
    return "; ".join(
        f"{g.get('id')} [{g.get('runtime')}] {g.get('name')}: "
        + ("usable, " + " ".join(g.get("precisions") or []) if g.get("usable") else "not usable")
        for g in f.get("gpus", [])
    )


def _ratio(check: Any) -> str:
    if not isinstance(check, Mapping) or check.get("ratio") is None:
        reason = check.get("reason") if isinstance(check, Mapping) else None
        return f"n/a ({reason})" if reason else "n/a"
    return f"{check['ratio']:.4f}"


def _energy_line(f: Mapping[str, Any]) -> str:
    idle, loaded, thr = f.get("idle") or {}, f.get("loaded") or {}, f.get("throttle") or {}
    sampler_idle = idle.get("sampler_w") or {}
    idle_w = next(iter(v for k, v in sampler_idle.items() if k.startswith("nvml")), None)
    stable = "stable" if idle.get("stable") else "not stable"
    return (
        f"idle {_num(idle_w, '.1f', ' W')} (sampler, {stable}; power usage "
        f"{_num(idle.get('power_usage_w'), '.1f', ' W')}), loaded "
        f"{_num(loaded.get('sampler_avg_w'), '.1f', ' W')} (power usage "
        f"{_num(loaded.get('power_usage_w'), '.1f', ' W')}) over "
        f"{_num(f.get('window_s'), '.1f', ' s')}; counter/∫instant power "
        f"{_ratio(f.get('product'))}, counter/∫power usage {_ratio(f.get('direct'))}; "
        f"throttle reasons idle: {', '.join(thr.get('idle_reasons') or ['none'])}; loaded: "
        f"{', '.join(thr.get('loaded_reasons') or ['none'])} ({thr.get('loaded_samples_slowed')}"
        f" of {thr.get('loaded_samples')} samples slowed)"
    )


def _timing_line(f: Mapping[str, Any]) -> str:
    return "; ".join(
        f"{w.get('workload')}: host {_num(_ms(w.get('host_median_ns')), '.4f', ' ms')}, "
        f"CUDA events {_num(_ms(w.get('event_median_ns')), '.4f', ' ms')}, "
        f"diff {_num((w.get('diff_ns') or 0) / 1e3, '.1f', ' µs')} (allowed "
        f"{_num((w.get('tolerance_ns') or 0) / 1e3, '.1f', ' µs')})"
        for w in f.get("workloads", [])
    )


def _run_line(f: Mapping[str, Any]) -> str:
    parts = []
    for r in f.get("runs", []):
        rho = r.get("rho")
        parts.append(
            f"{r.get('precision')}: {r.get('status')}, mean {_num(r.get('mean_ms'), '.3f', ' ms')}"
            f" (ρ {_num(rho * 100 if isinstance(rho, int | float) else None, '.1f', ' %')}), "
            f"{_num(r.get('throughput_items_per_s'), '.0f', ' items/s')}, "
            f"energy {r.get('energy_summary')}, flags {','.join(r.get('flags') or []) or '-'}"
        )
    return "; ".join(parts)


def summarise_training(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The training step's ``wattbench run --json`` document: tokens/s, step time, FLOPs per
    token, achieved TFLOP/s, MFU against the device's documented peak, J per trained token
    (NVML's counter), and whether the loss fell."""
    from wattbench.domain.peaks import mfu, peak_for

    runs = doc.get("runs") or []
    if not runs:
        return {"ok": False, "reason": (doc.get("error") or {}).get("message", "no run")}
    run = runs[0]
    out = summarise_run(run)
    training = run.get("training") or {}
    tokens_per_s = out.get("throughput_items_per_s")
    flops = training.get("flops_per_token")
    out["training"] = {
        k: training.get(k)
        for k in ("micro_batch", "grad_accum", "seq_len", "parameters", "flops_per_token")
    } | {
        "device_name": training.get("device_name"),
        "loss": [training.get("loss_first"), training.get("loss_last")],
    }
    problems = [out["reason"]] if not out["ok"] else []
    if isinstance(tokens_per_s, int | float) and isinstance(flops, int | float):
        achieved = tokens_per_s * flops / 1e12
        fraction, words = mfu(
            achieved,
            peak_for(str(training.get("device_name") or ""), str(out.get("precision") or "")),
            device_name=str(training.get("device_name") or ""),
            precision=str(out.get("precision") or ""),
        )
        out["achieved_tflops"], out["mfu"], out["mfu_words"] = achieved, fraction, words
    else:
        problems.append("no tokens/s or FLOPs per token")
    energy = out.get("energy") or {}
    out["j_per_token"] = energy.get("energy_per_item_j")
    first, last = training.get("loss_first"), training.get("loss_last")
    if not (isinstance(first, int | float) and isinstance(last, int | float) and last < first):
        problems.append(f"the loss did not fall ({first} → {last})")
    out["ok"] = not problems
    if problems:
        out["reason"] = "; ".join(problems)
    return out


def _training_line(f: Mapping[str, Any]) -> str:
    t = f.get("training") or {}
    return (
        f"training {t.get('device_name')}: {_num(f.get('throughput_items_per_s'), ',.0f')} "
        f"tokens/s, step {_num(f.get('mean_ms'), '.1f', ' ms')}, "
        f"{_num(f.get('achieved_tflops'), '.1f')} TFLOP/s; {f.get('mfu_words')}; "
        f"{_num(f.get('j_per_token'), '.3g', ' J/token')}; loss {t.get('loss')}"
    )


LINES = {
    "env": _env_line,
    "sensors": _sensors_line,
    "devices": _devices_line,
    "energy": _energy_line,
    "timing": _timing_line,
    "run": _run_line,
    "training": _training_line,
}


def summary_text(doc: Mapping[str, Any]) -> str:
    """device-check.txt: a result line, then one paragraph per step."""
    head = f"Wattbench device check, {doc.get('started_at')}"
    pre = doc.get("preflight") or {}
    if pre:
        head += f": {', '.join(pre.get('gpus', []))}, driver {pre.get('driver')}"
    if doc.get("error"):
        return f"{head}\nresult: NOT RUN: {doc['error']}\n"
    steps = doc.get("steps", [])
    failed = [s["name"] for s in steps if s.get("status") != "ok"]
    result = "ok" if not failed else f"FAILED ({', '.join(failed)})"
    if not doc.get("finished", True):
        result += ", UNFINISHED (stopped before its end, or still running)"
    lines = [head, f"result: {result}, {_num(doc.get('total_s'), '.0f', ' s')} in all", ""]
    for s in steps:
        lines.append(
            f"[{s.get('status')}] {s.get('name')} ({_num(s.get('seconds'), '.1f', ' s')})"
            + (f": {s['reason']}" if s.get("reason") else "")
        )
        line = LINES.get(s.get("name", ""))
        figures = s.get("figures") or {}
        if line is not None and figures:
            try:
                lines.append("    " + line(figures))
            except (TypeError, ValueError, AttributeError) as exc:
                lines.append(f"    (figures unreadable: {exc})")
    return "\n".join(lines) + "\n"
