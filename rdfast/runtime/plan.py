"""The plan of an annealing run: which transitions run between two looks of the host.

Transitions are numbered 1..T. The host must act after transition k when k is recorded, when k
ends a step-size knot (its tuned value is closed, or the next frozen value must be set), when a
checkpoint is due by count, and at least every ``max_length`` transitions (progress, checkpoints
by time). Between those points the device runs transitions without the host
(``rdfast.runtime.device_loop``), replayed as CUDA graphs of ``GRAPH_BLOCK`` transitions and
single ones (``graph_replays``). Pure functions of their arguments: unit-tested, no tensors.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

GRAPH_BLOCK = 8  # transitions per captured graph; a shorter remainder replays a one-transition graph
SEGMENT_MAX = 64  # transitions between the host's looks at progress and checkpoint time


@dataclass(frozen=True)
class Segment:
    """Transitions ``start + 1 .. end``, then what the host does after ``end``."""

    start: int
    end: int
    opens_knot: int | None  # the knot whose first transition is start + 1 (its frozen step size is set)
    closes_knot: int | None  # the knot whose last transition is end (its tuned step size is closed)
    record: bool  # record the estimates after end
    checkpoint: bool  # a checkpoint is due by count after end

    @property
    def length(self) -> int:
        return self.end - self.start


def segments(start: int, n_transitions: int, records, knot_bounds, checkpoint_every: int | None = None,
             max_length: int = SEGMENT_MAX) -> list[Segment]:
    """The segments after transition ``start`` up to T = ``n_transitions``.

    records: transition indices to record; knot_bounds [S + 1]: knot j covers transitions
    knot_bounds[j] .. knot_bounds[j + 1] − 1 (knot_bounds[0] = 1, knot_bounds[S] = T + 1);
    checkpoint_every: a checkpoint by count every that many transitions after ``start`` (None: none).
    """
    records, bounds = sorted(set(records)), list(knot_bounds)
    out, k = [], start
    while k < n_transitions:
        knot = bisect.bisect_right(bounds, k + 1) - 1  # the knot of transition k + 1
        knot_last = bounds[knot + 1] - 1
        stops = [knot_last, k + max_length, n_transitions]
        later = bisect.bisect_right(records, k)
        if later < len(records):
            stops.append(records[later])
        if checkpoint_every:
            stops.append(start + (1 + (k - start) // checkpoint_every) * checkpoint_every)
        end = min(stops)
        out.append(Segment(start=k, end=end, opens_knot=knot if k + 1 == bounds[knot] else None,
                           closes_knot=knot if end == knot_last else None, record=end in records,
                           checkpoint=bool(checkpoint_every) and (end - start) % checkpoint_every == 0))
        k = end
    return out


def graph_replays(n: int, block: int = GRAPH_BLOCK) -> list[int]:
    """How ``n`` transitions replay: graphs of ``block`` transitions, then single ones."""
    return [block] * (n // block) + [1] * (n % block)
