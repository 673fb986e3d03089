"""The plan of host-free segments (rdfast.runtime.plan): a pure function, checked by its properties."""
from hypothesis import given, settings
from hypothesis import strategies as st

from rdfast.runtime.plan import GRAPH_BLOCK, Segment, graph_replays, segments
from rdfast.sampling.tuning import knot_boundaries


def test_a_small_plan():
    # T = 10, knots [1..3] [4..6] [7..10], records at 5 and 10, checkpoints every 4, at most 3 per segment
    plan = segments(0, 10, [5, 10], [1, 4, 7, 11], checkpoint_every=4, max_length=3)
    assert plan == [
        Segment(0, 3, opens_knot=0, closes_knot=0, record=False, checkpoint=False),
        Segment(3, 4, opens_knot=1, closes_knot=None, record=False, checkpoint=True),
        Segment(4, 5, opens_knot=None, closes_knot=None, record=True, checkpoint=False),
        Segment(5, 6, opens_knot=None, closes_knot=1, record=False, checkpoint=False),
        Segment(6, 8, opens_knot=2, closes_knot=None, record=False, checkpoint=True),
        Segment(8, 10, opens_knot=None, closes_knot=2, record=True, checkpoint=False),
    ]


def test_resuming_inside_a_knot_counts_checkpoints_from_there():
    plan = segments(5, 10, [10], [1, 4, 7, 11], checkpoint_every=2, max_length=64)
    assert [(s.start, s.end) for s in plan] == [(5, 6), (6, 7), (7, 9), (9, 10)]
    assert plan[0].opens_knot is None and plan[0].closes_knot == 1
    assert [s.checkpoint for s in plan] == [False, True, True, False]


@settings(max_examples=200, deadline=None)
@given(T=st.integers(1, 300), start_frac=st.floats(0, 1), n_records=st.integers(0, 8), every=st.one_of(st.none(),
       st.integers(1, 50)), max_length=st.integers(1, 70), max_knots=st.integers(1, 40), data=st.data())
def test_segments_cover_the_run_and_stop_where_the_host_must_act(T, start_frac, n_records, every, max_length,
                                                                   max_knots, data):
    start = min(int(start_frac * T), T - 1)
    records = data.draw(st.lists(st.integers(0, T), max_size=n_records))
    bounds = knot_boundaries(T, max_knots).tolist()
    plan = segments(start, T, records, bounds, checkpoint_every=every, max_length=max_length)
    assert plan[0].start == start and plan[-1].end == T
    assert all(a.end == b.start for a, b in zip(plan, plan[1:]))
    assert all(1 <= s.length <= max_length for s in plan)
    ends = {s.end for s in plan}
    assert {r for r in records if r > start} <= ends
    assert all(s.record == (s.end in records) for s in plan)
    knot_lasts = {b - 1: j for j, b in enumerate(bounds[1:])}
    assert all(s.closes_knot == knot_lasts.get(s.end) for s in plan)
    assert {last for last in knot_lasts if last > start} <= ends
    knot_firsts = {b: j for j, b in enumerate(bounds[:-1])}
    assert all(s.opens_knot == knot_firsts.get(s.start + 1) for s in plan)
    if every:
        due = set(range(start + every, T + 1, every))
        assert due <= ends and all(s.checkpoint == (s.end in due) for s in plan)
    else:
        assert not any(s.checkpoint for s in plan)


def test_graph_replays():
    assert graph_replays(0) == [] and graph_replays(3) == [1, 1, 1]
    assert graph_replays(2 * GRAPH_BLOCK + 1) == [GRAPH_BLOCK, GRAPH_BLOCK, 1]
