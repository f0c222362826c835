"""NVML through a fake ``pynvml`` module (fake input to the real source), and amdsmi absent."""

from __future__ import annotations

import sys

import pytest
from wattbench.backends.sensors.amdsmi_source import AmdSmiSource
from wattbench.backends.sensors.common import STATUS_ABSENT, STATUS_OK, STATUS_UNREADABLE
from wattbench.backends.sensors.nvml import FLAG_WHOLE_GPU_FOR_MIG, NvmlSource
from wattbench.domain.errors import SensorError

from tests.fakes.fake_pynvml import NVML_ERROR_NOT_SUPPORTED, FakeGpu, FakeNvml


def test_energy_counter_supported() -> None:
    src = NvmlSource(FakeNvml([FakeGpu(power_w=300.0)]))
    (dom,) = src.domains()
    assert (dom.id, dom.device, dom.source, dom.kind, dom.unit) == (
        "nvml:0",
        "cuda:0",
        "nvml.total_energy",
        "energy",
        "mJ",
    )
    assert dom.max_power_w == 700.0 and dom.label == "NVIDIA H100 80GB HBM3"
    a = src.read()[0]
    b = src.read()[0]
    assert b.value >= a.value > 0 and b.t_ns > a.t_ns
    src.close()


def test_energy_counter_not_supported_falls_back_to_instant_power() -> None:
    src = NvmlSource(FakeNvml([FakeGpu(energy_counter=False, power_w=120.0)]))
    (dom,) = src.domains()
    assert dom.source == "nvml.power_instant∫" and dom.kind == "power" and dom.unit == "mW"
    assert src.read()[0].value == 120_000
    assert "Not Supported" in (src.statuses[0].note or "")


def test_only_power_usage_is_labelled_as_a_1s_average() -> None:
    src = NvmlSource(FakeNvml([FakeGpu(energy_counter=False, instant_field=False)]))
    (dom,) = src.domains()
    assert dom.source == "nvml.power_usage∫" and dom.update_period_s == 1.0
    assert "1 s average" in (src.statuses[0].note or "")


def test_library_missing_in_the_driver() -> None:
    src = NvmlSource(FakeNvml(library_missing=True))
    assert src.domains() == []
    (st,) = src.statuses
    assert st.status == STATUS_ABSENT and "no NVIDIA driver" in (st.why or "")
    src.close()


def test_python_package_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml → ImportError
    src = NvmlSource()
    (st,) = src.statuses
    assert st.status == STATUS_ABSENT and "nvidia-ml-py" in (st.fix or "")


def test_fake_module_is_picked_up_from_sys_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", FakeNvml([FakeGpu(), FakeGpu(name="L4")]))
    src = NvmlSource()
    assert [d.device for d in src.domains()] == ["cuda:0", "cuda:1"]
    assert all(st.status == STATUS_OK for st in src.statuses)


def test_gpu_lost_mid_run_raises_a_sensor_error() -> None:
    gpu = FakeGpu(lose_after_reads=8)
    src = NvmlSource(FakeNvml([gpu]))
    assert src.domains()
    with pytest.raises(SensorError, match="fell off the bus"):
        for _ in range(10):
            src.read()
    assert src.lost


def test_telemetry_and_mig() -> None:
    src = NvmlSource(FakeNvml([FakeGpu(clock_event_reasons=0x40, mig=True)]))
    tel = {name: value for name, _, _, value in src.read_telemetry()}
    assert tel["cuda:0.sm_clock_mhz"] == 1980 and tel["cuda:0.temp_c"] == 61
    assert tel["cuda:0.util_pct"] == 97 and tel["cuda:0.mem_used_bytes"] == 12 * 2**30
    assert tel["cuda:0.clock_event_reasons"] == 0x40 and tel["cuda:0.power_w"] == 300.0
    assert tel["cuda:0.power_limit_w"] == 700.0
    assert src.domain_flags("nvml:0") == (FLAG_WHOLE_GPU_FOR_MIG,)
    assert "MIG" in (src.statuses[0].note or "")


def test_no_power_reading_at_all_is_unreadable_with_reasons() -> None:
    class NoPower(FakeNvml):
        def nvmlDeviceGetPowerUsage(self, h: object) -> int:
            raise self.NVMLError(NVML_ERROR_NOT_SUPPORTED)

    src = NvmlSource(NoPower([FakeGpu(energy_counter=False, instant_field=False)]))
    (st,) = src.statuses
    assert st.status == STATUS_UNREADABLE and "power usage: Not Supported" in (st.why or "")


def test_amdsmi_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "amdsmi", None)
    src = AmdSmiSource()
    (st,) = src.statuses
    assert src.domains() == [] and st.status == STATUS_ABSENT and "ROCm" in (st.fix or "")


class _FakeAmdSmi:
    """amdsmi's Python names, for one MI210-like card (the present path, no ROCm here)."""

    class AmdSmiException(Exception):
        pass

    def __init__(self, *, energy: bool = True) -> None:
        self.energy = energy
        self.acc = 1_000_000

    def amdsmi_init(self) -> None:
        return None

    def amdsmi_shut_down(self) -> None:
        return None

    def amdsmi_get_processor_handles(self) -> list[str]:
        return ["gpu-handle-0"]

    def amdsmi_get_energy_count(self, h: str) -> dict[str, float]:
        if not self.energy:
            raise self.AmdSmiException("AMDSMI_STATUS_NOT_SUPPORTED")
        self.acc += 65_536
        return {"energy_accumulator": self.acc, "counter_resolution": 15.3, "timestamp": 0}

    def amdsmi_get_power_info(self, h: str) -> dict[str, object]:
        return {"current_socket_power": 212, "average_socket_power": "N/A"}


def test_amdsmi_energy_accumulator_times_resolution() -> None:
    src = AmdSmiSource(_FakeAmdSmi())
    (dom,) = src.domains()
    assert dom.source == "amdsmi.energy_accumulator" and dom.unit == "uJ"
    a, b = src.read()[0].value, src.read()[0].value
    assert b - a == pytest.approx(65_536 * 15.3)
    src.close()


def test_amdsmi_socket_power_fallback() -> None:
    src = AmdSmiSource(_FakeAmdSmi(energy=False))
    (dom,) = src.domains()
    assert dom.source == "amdsmi.socket_power∫" and dom.kind == "power"
    assert src.read()[0].value == 212.0
