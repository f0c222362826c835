"""A run's power sampling as the supervisor uses it: the sampler behind a wall that no sensor
problem gets through. Opening, the idle baseline, starting, figures and traces each fail into a
reason for the run ("energy n/a: ..."), never into a failed run.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from dataclasses import dataclass

from wattbench.domain.result import EnergyFigure, RunResult, Trace
from wattbench.domain.spec import RunSpec
from wattbench.energy.figures import IdleBaseline
from wattbench.energy.sampler import Sampler, open_sampler
from wattbench.engine.token_energy import with_phase_energy

log = logging.getLogger(__name__)


@dataclass
class RunEnergy:
    """The sampler of one run (None when no source could be opened, with why)."""

    sampler: Sampler | None = None
    na_reason: str | None = None
    idle: IdleBaseline | None = None
    started: bool = False

    @classmethod
    def open(cls, spec: RunSpec) -> RunEnergy:
        try:
            return cls(sampler=open_sampler(spec))
        except Exception as exc:  # a sensor problem must never stop the run
            log.warning("energy sampler unavailable: %s", exc)
            return cls(na_reason=f"no power sensor could be opened: {exc}")

    def idle_baseline(self) -> None:
        if self.sampler is None:
            return
        try:
            self.idle = self.sampler.idle_baseline()
        except Exception as exc:
            log.warning("idle baseline failed: %s", exc)
            self.idle = None

    def start(self) -> None:
        if self.sampler is None:
            return
        try:
            self.sampler.start()
            self.started = True
        except Exception as exc:
            log.warning("energy sampler failed to start: %s", exc)
            self.na_reason = f"the power sampler failed to start: {exc}"
            self.sampler = None

    def stop(self) -> None:
        if self.sampler is not None and self.started:
            try:
                self.sampler.stop()
            except Exception as exc:
                log.warning("energy sampler failed to stop: %s", exc)
            self.started = False

    def latest_power_w(self) -> dict[str, float]:
        if self.sampler is None or not self.started:
            return {}
        try:
            return self.sampler.latest_power_w()
        except Exception:  # a live chart's value is never worth failing a run
            return {}

    def figures(
        self, t0_ns: int, t1_ns: int, items: int
    ) -> tuple[tuple[EnergyFigure, ...], tuple[str, ...], str | None]:
        """(figures, flags, why measured energy is n/a) for the window [t0, t1]."""
        if self.sampler is None:
            return (), (), self.na_reason or "no power sensor"
        try:
            report = self.sampler.figures(t0_ns, t1_ns, items, self.idle)
        except Exception as exc:
            log.warning("energy figures failed: %s", exc)
            return (), (), f"energy could not be computed: {exc}"
        na = report.na_reason
        if not report.figures and not na:
            na = "no power sensor reported data for this device"
        return tuple(report.figures), tuple(report.flags), na

    def with_phase_energy(self, run: RunResult) -> RunResult:
        """A generation run with its energy split between prefill and decode from this run's
        samples (engine/generation.py ``split_view``); any other run as it is."""
        if run.generation is None:
            return run
        try:
            series = self.sampler.series() if self.sampler is not None else []
            period_s = self.sampler.period_s if self.sampler is not None else 0.0
            return with_phase_energy(run, series, period_s)
        except Exception as exc:  # the split is never worth failing a run
            log.warning("energy per token failed: %s", exc)
            why = f"the energy could not be split per token: {exc}"
            return run.with_(
                generation=dataclasses.replace(run.generation, phase_energy_na_reason=why)
            )

    def traces(self) -> dict[str, Trace]:
        if self.sampler is None:
            return {}
        try:
            return {t.name: t for t in self.sampler.traces()}
        except Exception as exc:
            log.warning("energy traces failed: %s", exc)
            return {}

    def close(self, busy: threading.Thread | None = None) -> None:
        """Stop and close the sampler; if ``busy`` (an idle-baseline thread cancelled midway)
        still uses it, close it once that thread ends, without waiting here."""
        if busy is not None and busy.is_alive():

            def close_later() -> None:
                busy.join()
                self.close()

            threading.Thread(target=close_later, name="wattbench-close", daemon=True).start()
            return
        self.stop()
        if self.sampler is not None:
            try:
                self.sampler.close()
            except Exception as exc:
                log.debug("sampler close failed: %s", exc)
