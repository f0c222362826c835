"""Checking a run before any worker starts: the model, its inputs, the scenario, the runtime.

``validate`` resolves the model once (a file is read in a probe process, which a cancel token
stops; its parser errors become ModelError), fixes its inputs (dynamic dimensions set, explicit
shapes well-formed), checks that the scenario fits the model, and then asks the runtime plugin
whether it can run it on the device with these options. Every refusal is a BadInputError
subclass whose message says what to do.
"""

from __future__ import annotations

from collections.abc import Sequence

from wattbench.backends.models import catalog, llm_memory
from wattbench.backends.models.base import ModelEntry
from wattbench.backends.runtimes import registry, torch_ddp
from wattbench.backends.runtimes.base import Runtime, RuntimeOptions
from wattbench.backends.runtimes.device_names import torch_device
from wattbench.domain.errors import (
    BadInputError,
    DeviceError,
    ModelError,
    ShapeError,
    UnsupportedOptionError,
    WattbenchError,
)
from wattbench.domain.events import CancelToken
from wattbench.domain.spec import MIN_NEW_TOKENS, RunSpec, Scenario
from wattbench.engine.pinning import check_instances


def runtime_options(spec: RunSpec, entry: ModelEntry | None = None) -> RuntimeOptions:
    """What the runtime plugin needs of a spec (and of its model's entry: a server run of a
    generative model loads it for generation)."""
    return RuntimeOptions(
        precision=spec.precision,
        batch_size=spec.batch_size,
        threads=spec.threads,
        dims=dict(spec.dims),
        input_shapes=dict(spec.input_shapes),
        ort_provider=spec.ort_provider,
        ort_graph_optimization=spec.ort_graph_optimization,
        prompt_tokens=spec.prompt_tokens,
        new_tokens=spec.new_tokens,
        seed=spec.repeat,
        generation=generates(spec, entry),
        training=spec.scenario is Scenario.TRAINING,
        grad_accum=spec.grad_accum,
        activation_checkpointing=spec.activation_checkpointing,
        find_micro_batch=spec.find_micro_batch,
        data_parallel=spec.data_parallel,
    )


def generates(spec: RunSpec, entry: ModelEntry | None) -> bool:
    """The run measures generation: the generation scenario, or the server scenario serving a
    generative model (each request a sequence: prefill, then decode steps)."""
    if spec.scenario is Scenario.GENERATION:
        return True
    return spec.scenario is Scenario.SERVER and entry is not None and entry.generative


def resolve_entry(spec: RunSpec, cancel: CancelToken | None = None) -> ModelEntry:
    """The catalog entry of ``spec.model``; unexpected reader errors become ModelError.
    ``cancel`` stops the probe that reads a model file (RunCancelledError)."""
    # the batch goes with the dims: a fixed-batch model or an input shape is checked
    # against the run's batch size, not against batch 1
    dims = {**spec.dims, catalog.BATCH: spec.batch_size}
    try:
        return catalog.resolve_model(
            spec.model, dims=dims, input_shapes=dict(spec.input_shapes) or None, cancel=cancel
        )
    except WattbenchError:
        raise
    except Exception as exc:  # a parser's own exception: the file is not a usable model
        raise ModelError(f"Cannot read the model {spec.model}: {exc}", field="model") from exc


def check_entry(spec: RunSpec, entry: ModelEntry) -> None:
    """The checks of a resolved model against a spec that open nothing: its inputs fixed at
    the spec's batch and dimensions, and a scenario the model can play."""
    catalog.concrete_inputs(entry, spec.batch_size, dict(spec.dims), dict(spec.input_shapes))
    if spec.scenario is Scenario.SERVER:
        check_server_entry(spec, entry)
    if spec.scenario is Scenario.TRAINING:
        check_training_entry(spec, entry)
    if not generates(spec, entry):
        return
    if not entry.generative:
        raise UnsupportedOptionError(
            f"{spec.model} is not a generative model: the generation scenario needs a decoder "
            "with a KV cache (builtin:gpt-small, builtin:gpt2); use single-stream or offline.",
            field="scenario",
        )
    limit = catalog.max_positions(entry)
    if limit is not None and spec.prompt_tokens + spec.new_tokens > limit:
        raise ShapeError(
            f"{spec.model} holds at most {limit} positions: prompt {spec.prompt_tokens} + "
            f"{spec.new_tokens} new tokens is too long.",
            field="new_tokens",
        )


def check_training_entry(spec: RunSpec, entry: ModelEntry) -> None:
    """A training step trains a decoder language model on sequences it can hold."""
    if not entry.generative:
        raise UnsupportedOptionError(
            f"{spec.model} is not a decoder language model: the training scenario trains one "
            "(builtin:gpt-small, an llm: architecture or a Hugging Face checkpoint).",
            field="scenario",
        )
    limit = catalog.max_positions(entry)
    if limit is not None and spec.prompt_tokens > limit:
        raise ShapeError(
            f"{spec.model} holds at most {limit} positions: a training sequence of "
            f"{spec.prompt_tokens} tokens is too long.",
            field="prompt_tokens",
        )


def check_server_entry(spec: RunSpec, entry: ModelEntry) -> None:
    """A server run of a generative model serves one sequence per request on one stream; an
    SLO on TTFT or TPOT needs such a model."""
    if not entry.generative:
        if spec.slo_metric != "latency":
            raise UnsupportedOptionError(
                f"{spec.model} does not generate tokens: an SLO on {spec.slo_metric.upper()} "
                "needs a generative model; limit the latency instead (e.g. --slo p99=100ms).",
                field="slo_ms",
            )
        return
    if spec.streams > 1:
        raise BadInputError(
            f"{spec.model} generates tokens with its own KV cache, so one loaded model serves "
            f"one sequence at a time: a server run of it has 1 stream (got {spec.streams}). "
            "Use --streams 1 (requests queue first come, first served).",
            field="streams",
        )
    if spec.new_tokens < MIN_NEW_TOKENS:
        raise BadInputError(
            f"A generation request needs at least {MIN_NEW_TOKENS} new tokens to have a time "
            f"per output token (got {spec.new_tokens}).",
            field="new_tokens",
        )


def validate(spec: RunSpec, cancel: CancelToken | None = None) -> ModelEntry:
    """The model entry ``spec`` runs; a BadInputError subclass when it cannot run."""
    runtime = registry.get_runtime(spec.runtime)
    available = runtime.available()
    if not available.ok:
        raise UnsupportedOptionError(
            f"Runtime {spec.runtime} is not usable: {available.reason}", field="runtime"
        )
    if spec.scenario is Scenario.TRAINING and not getattr(runtime, "trains", False):
        raise UnsupportedOptionError(
            f"The {spec.runtime} runtime does not train: run the training scenario on torch.",
            field="runtime",
        )
    entry = resolve_entry(spec, cancel)
    check_entry(spec, entry)
    runtime.check(entry, spec.device, runtime_options(spec, entry))
    check_data_parallel(spec, entry, runtime)
    check_memory(spec, entry)
    check_instances(spec)
    return entry


def check_data_parallel(spec: RunSpec, entry: ModelEntry, runtime: Runtime) -> None:
    """Each data-parallel rank has its device: every rank shares the CPU; on GPUs rank r runs
    on index k + r of a run on GPU k, which must be visible and usable. The micro-batch
    search runs on one rank (an out-of-memory step of one rank would leave the others waiting
    in the step's all-reduce)."""
    n = spec.data_parallel
    if n == 1:
        return
    if spec.find_micro_batch:
        raise UnsupportedOptionError(
            "The micro-batch search runs on one rank: search with one data-parallel rank, then "
            "give the micro-batch found to the data-parallel run.",
            field="find_micro_batch",
        )
    devices = torch_ddp.rank_devices(spec.device, n)
    if devices[0] == "cpu":
        return
    visible = [d.id for d in runtime.devices() if d.usable and d.id.startswith("cuda:")]
    missing = [d for d in devices if torch_device(d) not in visible]
    if missing:
        have = ", ".join(visible) or "no usable GPU"
        raise DeviceError(
            f"{n} data-parallel ranks from {spec.device} run on {devices[0]} … {devices[-1]}, "
            f"one GPU each, but {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not "
            f"visible ({spec.runtime} sees {have}). Use fewer ranks, start from a lower GPU, "
            "or make the GPUs visible (CUDA_VISIBLE_DEVICES / HIP_VISIBLE_DEVICES).",
            field="data_parallel",
        )
    options = runtime_options(spec, entry)
    for device in devices[1:]:
        runtime.check(entry, device, options)


def check_memory(spec: RunSpec, entry: ModelEntry) -> None:
    """A language model's weights + KV cache against the device's free memory (where it is
    known): a run that cannot fit is refused with the numbers."""
    if entry.decoder is None:
        return
    free = llm_memory.free_bytes(spec.device)
    if free is None:
        return
    if generates(spec, entry):
        context = spec.prompt_tokens + spec.new_tokens
    else:
        context = {**dict(entry.default_dims), **spec.dims}.get("seq_len", spec.prompt_tokens)
    fp = llm_memory.footprint(
        entry.decoder, entry.parameters or 0, spec.precision, spec.batch_size, context
    )
    llm_memory.check_fits(fp, free, spec.device, spec.model)


def validate_many(specs: Sequence[RunSpec], cancel: CancelToken | None = None) -> None:
    """Validate each distinct configuration; one BadInputError naming every problem.
    ``cancel`` stops a model file's probe (RunCancelledError)."""
    problems: list[str] = []
    seen: set[tuple[object, ...]] = set()
    first: BadInputError | None = None
    for spec in specs:
        key = spec.config_key()
        if key in seen:
            continue
        seen.add(key)
        try:
            validate(spec, cancel)
        except BadInputError as exc:
            first = first or exc
            problems.append(f"{spec.label()}: {exc}" if len(specs) > 1 else str(exc))
    if first is not None:
        if len(problems) == 1:
            raise first
        raise type(first)("\n".join(problems), field=first.field) from first
