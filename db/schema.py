"""The run store's tables (SQLAlchemy 2.0 typed ORM).

Listing columns live on ``runs``; the full result (without arrays) is kept as JSON beside them,
and raw arrays and telemetry traces go to separate tables as compressed blobs, so a listing
never reads them. These classes are the schema at the newest migration; the repository turns
rows into immutable domain objects and never hands them out.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

log = logging.getLogger(__name__)

# Constraint names are explicit so that migrations (and SQLite batch mode) can refer to them.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUN_ID_LENGTH = 64
JsonDict = dict[str, Any]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        JsonDict: JSON,
        datetime: DateTime(timezone=False),
    }


class Machine(Base):
    """One machine as set up (``result.machine_identity``: no load, free memory or process);
    runs on an unchanged machine share it, each keeping its whole description."""

    __tablename__ = "machines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of `system`
    hostname: Mapped[str | None] = mapped_column(String(255), index=True)
    system: Mapped[JsonDict]
    first_seen: Mapped[datetime]


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("machine_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    machine_id: Mapped[int] = mapped_column(ForeignKey("machines.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))  # "cpu", "cuda:0"
    kind: Mapped[str] = mapped_column(String(16))  # "cpu", "cuda", "mps", "xpu" ...


class Model(Base):
    """A model as measured: reference, content hash and concrete inputs."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)  # sha256 of the whole ModelInfo
    ref: Mapped[str] = mapped_column(String(1024), index=True)
    name: Mapped[str] = mapped_column(String(255))
    family: Mapped[str] = mapped_column(String(32))
    format: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    inputs: Mapped[list[Any]] = mapped_column(JSON)
    # BIGINT (a 7B-parameter model overflows int4); SQLite's INTEGER already holds 64 bits
    parameters: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))


class Sweep(Base):
    __tablename__ = "sweeps"
    id: Mapped[str] = mapped_column(String(RUN_ID_LENGTH), primary_key=True)
    created_at: Mapped[datetime]
    label: Mapped[str | None] = mapped_column(Text)


class Run(Base):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_created_at", "created_at"),)
    id: Mapped[str] = mapped_column(String(RUN_ID_LENGTH), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    wattbench_version: Mapped[str] = mapped_column(String(32))
    # indexed copies of the specification
    model_ref: Mapped[str] = mapped_column(String(1024), index=True)
    device: Mapped[str] = mapped_column(String(64), index=True)
    runtime: Mapped[str] = mapped_column(String(32), index=True)
    precision: Mapped[str] = mapped_column(String(8))
    batch_size: Mapped[int] = mapped_column(Integer)
    threads: Mapped[int | None] = mapped_column(Integer)
    scenario: Mapped[str] = mapped_column(String(32))
    repeat: Mapped[int] = mapped_column(Integer, default=0)
    sweep_id: Mapped[str | None] = mapped_column(
        ForeignKey("sweeps.id", ondelete="SET NULL"), index=True
    )
    machine_id: Mapped[int | None] = mapped_column(ForeignKey("machines.id"), index=True)
    device_id: Mapped[int | None] = mapped_column(ForeignKey("devices.id"))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id"), index=True)
    # summary figures (None when unknown)
    converged: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[list[str]] = mapped_column(JSON)
    throughput_items_per_s: Mapped[float | None] = mapped_column(Float)
    throughput_lo: Mapped[float | None] = mapped_column(Float)
    throughput_hi: Mapped[float | None] = mapped_column(Float)
    mean_ns: Mapped[float | None] = mapped_column(Float)
    p50_ns: Mapped[float | None] = mapped_column(Float)
    p99_ns: Mapped[float | None] = mapped_column(Float)
    rho: Mapped[float | None] = mapped_column(Float)
    energy_per_item_j: Mapped[float | None] = mapped_column(Float)  # device view, gross
    items_per_j: Mapped[float | None] = mapped_column(Float)
    energy_source: Mapped[str | None] = mapped_column(String(255))
    # the whole RunResult.to_dict(include_arrays=False), non-finite numbers as null
    result: Mapped[JsonDict]
    note: Mapped[str] = mapped_column(Text, default="")
    # who is writing it, so that a crashed writer's run can be told from a live one
    writer_host: Mapped[str | None] = mapped_column(String(255))
    writer_pid: Mapped[int | None] = mapped_column(Integer)
    writer_started: Mapped[float | None] = mapped_column(Float)  # process create time, epoch s


class RunArray(Base):
    """One raw per-run array (latencies, start timestamps, warm-up, TTFT ...), zlib-packed."""

    __tablename__ = "run_arrays"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    dtype: Mapped[str] = mapped_column(String(8))
    shape: Mapped[list[int]] = mapped_column(JSON)
    codec: Mapped[str] = mapped_column(String(16))  # "zlib" (wattbench.domain.arrays)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class RunTrace(Base):
    """One telemetry trace: timestamps and values, both zlib-packed."""

    __tablename__ = "run_traces"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    unit: Mapped[str] = mapped_column(String(32))
    codec: Mapped[str] = mapped_column(String(16))
    t_dtype: Mapped[str] = mapped_column(String(8))
    t_shape: Mapped[list[int]] = mapped_column(JSON)
    t_data: Mapped[bytes] = mapped_column(LargeBinary)
    v_dtype: Mapped[str] = mapped_column(String(8))
    v_shape: Mapped[list[int]] = mapped_column(JSON)
    v_data: Mapped[bytes] = mapped_column(LargeBinary)


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)


class RunTag(Base):
    __tablename__ = "run_tags"
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class CostProfileRow(Base):
    """Per-device cost assumptions (added by migration 0002)."""

    __tablename__ = "cost_profiles"
    __table_args__ = (UniqueConstraint("device", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    purchase_price_usd: Mapped[float | None] = mapped_column(Float)
    amortization_years: Mapped[float | None] = mapped_column(Float)
    utilization: Mapped[float | None] = mapped_column(Float)
    electricity_usd_per_kwh: Mapped[float | None] = mapped_column(Float)
    pue: Mapped[float | None] = mapped_column(Float)
    carbon_g_per_kwh: Mapped[float | None] = mapped_column(Float)
    cloud_usd_per_hour: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime]


COST_FIELDS = (
    "purchase_price_usd",
    "amortization_years",
    "utilization",
    "electricity_usd_per_kwh",
    "pue",
    "carbon_g_per_kwh",
    "cloud_usd_per_hour",
)
