"""Where the labels of a scatter's points go, so they neither cover one another, nor the points,
nor leave the plot: one rule for the report's charts (matplotlib) and the app's (pyqtgraph).

Everything is in pixels of the plot area, x to the right and y up, (0, 0) its lower left
corner. Each front end measures its own text and turns the chosen side into its own anchor.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# (dx, dy): the label to the right (1), left (-1) or centred (0) on the point, above (1) or
# below (-1) it; tried in this order, the first that collides with nothing wins
SIDES: tuple[tuple[int, int], ...] = ((1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1))
OUTSIDE_WEIGHT = 4.0  # a label out of the plot is worse than one over another
MAX_SHIFT = 6  # in a crowd, a label may move this many rows away (with a leader line)


@dataclass(frozen=True)
class Box:
    x0: float
    y0: float
    x1: float
    y1: float

    def overlap(self, other: Box) -> float:
        w = min(self.x1, other.x1) - max(self.x0, other.x0)
        h = min(self.y1, other.y1) - max(self.y0, other.y0)
        return w * h if w > 0 and h > 0 else 0.0

    @property
    def area(self) -> float:
        return (self.x1 - self.x0) * (self.y1 - self.y0)


@dataclass(frozen=True)
class Placement:
    side: tuple[int, int]
    box: Box
    shift: int = 0  # rows moved away from its point: draw a leader line to it when not 0


def label_box(
    point: tuple[float, float],
    size: tuple[float, float],
    side: tuple[int, int],
    gap: float,
    shift: int = 0,
) -> Box:
    """The box of a label of ``size`` (w, h) put on ``side`` of ``point``, ``gap`` px away,
    moved ``shift`` rows further up (above) or down (below)."""
    (x, y), (w, h), (dx, dy) = point, size, side
    x0 = x + gap if dx > 0 else x - gap - w if dx < 0 else x - w / 2
    rise = (gap / 2 if dx else gap * 1.5) + shift * h * 1.1  # centred: clear of the marker
    y0 = y + rise if dy > 0 else y - rise - h
    return Box(x0, y0, x0 + w, y0 + h)


def place_labels(
    points: Sequence[tuple[float, float]],
    sizes: Sequence[tuple[float, float]],
    area: tuple[float, float],
    *,
    marker: float = 8.0,
    gap: float = 5.0,
    avoid: Sequence[Box] = (),
) -> list[Placement]:
    """A place for each point's label (greedy, in the order given): the first of ``SIDES``
    that overlaps no label placed before, no marker (``marker`` px wide) and stays inside the
    plot (``area``: width, height); in a crowd, the nearest such place up to ``MAX_SHIFT`` rows
    away; failing all, the place that does least harm. ``avoid``: more boxes to keep clear
    of (a legend)."""
    width, height = area
    half = marker / 2
    markers = [Box(x - half, y - half, x + half, y + half) for x, y in points]
    placed: list[Placement] = []
    for i, (point, size) in enumerate(zip(points, sizes, strict=True)):
        best: Placement | None = None
        best_cost = float("inf")
        for shift in range(MAX_SHIFT + 1):
            for side in SIDES:
                box = label_box(point, size, side, gap, shift)
                cost = OUTSIDE_WEIGHT * _outside(box, width, height)
                cost += sum(box.overlap(p.box) for p in placed)
                cost += sum(box.overlap(m) for j, m in enumerate(markers) if j != i)
                cost += sum(box.overlap(a) for a in avoid)
                cost += shift * 0.01  # of two equal harms, the nearer place
                if cost < best_cost:
                    best, best_cost = Placement(side, box, shift), cost
            if best_cost < 1.0:  # a place that collides with nothing (or a mere pixel)
                break
        assert best is not None
        placed.append(best)
    return placed


def _outside(box: Box, width: float, height: float) -> float:
    """The area of ``box`` that lies outside the plot."""
    inside = Box(max(box.x0, 0.0), max(box.y0, 0.0), min(box.x1, width), min(box.y1, height))
    kept = inside.area if inside.x1 > inside.x0 and inside.y1 > inside.y0 else 0.0
    return box.area - kept
