"""Energy from power samples: areas between trustworthy neighbours, gaps marked, nothing invented.

A sample is (time, value or None). Two ways to join neighbours: trapezoids (`hold=False`) for every sample of a
channel, exact for ramps; or each value held until the next (`hold=True`) for the store's thinned rows: a row is
kept only when the value moved past the deadband, so it held until the next row (a trapezoid there would smear
a stop over the whole keep-alive interval before it). Between two consecutive samples the area counts only when
both have a value and they are at most `max_gap_s` apart; otherwise the interval is a gap, and its length is
reported, not filled. A restart, an outage or a meter fault therefore shows as a gap. Samples that do not move
time forward (a replay after a restart, a duplicate) are dropped, so the same energy is never counted twice.

`split_at` cuts the samples at given instants (local midnights) with interpolated points, so each piece
integrates exactly its own share of an interval that spans the cut.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

J_PER_KWH = 3.6e6


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading of a channel at `t` (UTC epoch seconds); `value` None: no trustworthy value then."""

    t: float
    value: float | None


@dataclass(frozen=True, slots=True)
class Gap:
    """An interval (UTC epoch seconds) with no usable data."""

    start: float
    end: float

    @property
    def length_s(self) -> float:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Integral:
    """The integral of a channel over its covered intervals (value × s), the covered seconds, the gaps."""

    area: float
    covered_s: float
    gaps: tuple[Gap, ...] = ()

    @property
    def kwh(self) -> float:
        """`area` of a power channel in W as kWh."""
        return self.area / J_PER_KWH

    @property
    def gap_s(self) -> float:
        return sum(g.length_s for g in self.gaps)


def ordered(samples: Iterable[Sample]) -> list[Sample]:
    """The samples with time strictly increasing: anything not later than the one before is dropped."""
    kept: list[Sample] = []
    for sample in samples:
        if not kept or sample.t > kept[-1].t:
            kept.append(sample)
    return kept


def usable(a: Sample, b: Sample, max_gap_s: float) -> bool:
    """Whether the interval a..b counts: both ends have a value and they are close enough."""
    return a.value is not None and b.value is not None and b.t - a.t <= max_gap_s


def area(a: Sample, b: Sample, hold: bool) -> float:
    """The area of one usable interval."""
    assert a.value is not None and b.value is not None
    return (a.value if hold else (a.value + b.value) / 2.0) * (b.t - a.t)


def integrate(samples: Sequence[Sample], max_gap_s: float, hold: bool = False) -> Integral:
    """Integral of strictly ordered `samples` (see `ordered`) over their usable intervals."""
    total = covered = 0.0
    gaps: list[Gap] = []
    for a, b in itertools.pairwise(samples):
        if usable(a, b, max_gap_s):
            total += area(a, b, hold)
            covered += b.t - a.t
        elif gaps and gaps[-1].end == a.t:
            gaps[-1] = Gap(gaps[-1].start, b.t)
        else:
            gaps.append(Gap(a.t, b.t))
    return Integral(total, covered, tuple(gaps))


def split_at(
    samples: Sequence[Sample], cuts: Sequence[float], max_gap_s: float, hold: bool = False
) -> list[list[Sample]]:
    """Cut strictly ordered `samples` at the sorted instants `cuts` into len(cuts) + 1 pieces.

    A usable interval that spans a cut gets a sample at the cut (interpolated; with `hold`, the held value), at
    the end of one piece and the start of the next, so no area is lost or counted twice. A gap that spans a cut
    stays a gap on both sides (each piece starts or ends with a sample carrying no value at the cut).
    """
    pieces: list[list[Sample]] = [[] for _ in range(len(cuts) + 1)]
    index = 0
    previous: Sample | None = None
    for sample in samples:
        while index < len(cuts) and sample.t > cuts[index]:
            cut = cuts[index]
            if previous is not None and previous.t == cut:
                pieces[index + 1].append(previous)
            elif previous is not None and previous.t < cut:
                value = None
                if usable(previous, sample, max_gap_s):
                    value = previous.value if hold else _interpolate(previous, sample, cut)
                pieces[index].append(Sample(cut, value))
                pieces[index + 1].append(Sample(cut, value))
            index += 1
        pieces[index].append(sample)
        previous = sample
    return pieces


def _interpolate(a: Sample, b: Sample, t: float) -> float:
    assert a.value is not None and b.value is not None
    return a.value + (b.value - a.value) * (t - a.t) / (b.t - a.t)
