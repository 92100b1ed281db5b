"""Which member goes where: the sticky key space [0, SPACE) cut into slices owned by backends.

A member's point never changes (it is a hash of route and member), so a member changes backend
only when the slice under its point changes owner. `rebalance` hands over the fewest units it
can, and only from backends whose weight went down to backends whose weight went up: raising
the new service from 10% to 30% moves members from the monolith to the new service and never
the other way, with any number of backends. A fixed cumulative layout (A|B|C) would not keep
that promise: moving weight from A to C would shift B's range and move B's members too."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SPACE = 1 << 32

Weights = Sequence[tuple[str, int]]


@dataclass(frozen=True)
class Slice:
    start: int
    end: int
    backend: str

    @property
    def size(self) -> int:
        return self.end - self.start


def target_units(weights: Weights) -> dict[str, int]:
    """Units of the key space per backend, exactly proportional to the weights up to one unit
    (largest remainder), summing to SPACE. Deterministic: ties go to the earlier backend."""
    total = sum(w for _, w in weights)
    if total <= 0:
        raise ValueError("at least one weight must be positive")
    floors = {name: w * SPACE // total for name, w in weights}
    remainders = sorted(
        ((-(w * SPACE % total), index, name) for index, (name, w) in enumerate(weights)),
    )
    for _, _, name in remainders[: SPACE - sum(floors.values())]:
        floors[name] += 1
    return floors


class Allocation:
    """Slices covering [0, SPACE) exactly once, sorted by start, adjacent owners merged."""

    def __init__(self, slices: Iterable[Slice]) -> None:
        self.slices: tuple[Slice, ...] = tuple(_merge(sorted(slices, key=lambda s: s.start)))
        _check_cover(self.slices)
        self._starts = [s.start for s in self.slices]

    @classmethod
    def canonical(cls, weights: Weights) -> Allocation:
        """The layout without history: backends in the given order, one range each."""
        slices, start = [], 0
        for name, units in target_units(weights).items():
            if units:
                slices.append(Slice(start, start + units, name))
                start += units
        return cls(slices)

    def owner(self, point: int) -> str:
        return self.slices[bisect.bisect_right(self._starts, point) - 1].backend

    def units(self) -> dict[str, int]:
        owned: dict[str, int] = {}
        for s in self.slices:
            owned[s.backend] = owned.get(s.backend, 0) + s.size
        return owned

    def matches(self, weights: Weights) -> bool:
        targets = {k: v for k, v in target_units(weights).items() if v}
        return self.units() == targets

    def rebalance(self, weights: Weights) -> Allocation:
        """The allocation for new weights that moves the fewest members, only from backends
        that lose share to backends that gain share."""
        targets = target_units(weights)
        owned = self.units()
        kept: list[Slice] = []
        freed: list[tuple[int, int]] = []
        for name in _owners_in_order(self.slices):
            excess = owned[name] - targets.get(name, 0)
            mine = [s for s in self.slices if s.backend == name]
            kept_mine, freed_mine = _release(mine, max(excess, 0))
            kept += kept_mine
            freed += freed_mine
        freed.sort()
        for name, _ in weights:
            deficit = targets[name] - owned.get(name, 0)
            if deficit > 0:
                taken, freed = _take(freed, deficit)
                kept += [Slice(a, b, name) for a, b in taken]
        if freed:
            raise AssertionError("rebalance left key space unowned")
        return Allocation(kept)

    def to_list(self) -> list[list[int | str]]:
        return [[s.start, s.end, s.backend] for s in self.slices]

    @classmethod
    def from_list(cls, raw: Iterable[Sequence[object]]) -> Allocation:
        return cls(Slice(int(a), int(b), str(name)) for a, b, name in raw)  # type: ignore[call-overload]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Allocation) and self.slices == other.slices

    def __repr__(self) -> str:
        return f"Allocation({self.units()})"


def _owners_in_order(slices: Sequence[Slice]) -> list[str]:
    return list(dict.fromkeys(s.backend for s in slices))


def _release(mine: list[Slice], excess: int) -> tuple[list[Slice], list[tuple[int, int]]]:
    """Give up `excess` units from the top of this backend's slices."""
    kept, freed = list(mine), []
    while excess > 0:
        top = kept.pop()
        if top.size <= excess:
            freed.append((top.start, top.end))
            excess -= top.size
        else:
            freed.append((top.end - excess, top.end))
            kept.append(Slice(top.start, top.end - excess, top.backend))
            excess = 0
    return kept, freed


def _take(
    freed: list[tuple[int, int]], units: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Take `units` from the lowest freed ranges; return (taken, still free)."""
    taken, rest = [], list(freed)
    while units > 0:
        a, b = rest.pop(0)
        if b - a <= units:
            taken.append((a, b))
            units -= b - a
        else:
            taken.append((a, a + units))
            rest.insert(0, (a + units, b))
            units = 0
    return taken, rest


def _merge(slices: list[Slice]) -> list[Slice]:
    merged: list[Slice] = []
    for s in slices:
        if s.size <= 0:
            continue
        if merged and merged[-1].backend == s.backend and merged[-1].end == s.start:
            merged[-1] = Slice(merged[-1].start, s.end, s.backend)
        else:
            merged.append(s)
    return merged


def _check_cover(slices: Sequence[Slice]) -> None:
    at = 0
    for s in slices:
        if s.start != at:
            raise ValueError(f"slices must cover the key space without gaps (gap at {at})")
        at = s.end
    if at != SPACE:
        raise ValueError("slices must cover the whole key space")
