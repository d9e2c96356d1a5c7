"""Kept label-free scores: written with the attention, equal to the from-cells numbers.

The same matrices go into a real warehouse (Parquet cells, kept scores) and into an
in-memory database as inline cells (no kept scores: every metric computes from cells);
every metric must agree to 1e-6 for random tags, layer choices and parameter sets.
"""

from __future__ import annotations

import numpy as np
import pytest
from sql_fixtures import TAG, Rollout, close, connect, load, records

from warehouse.store import ModelInfo, RolloutRecord

MODEL = "test-model"
N_LAYERS, N_HEADS = 5, 3


def rollout_record(rid: str, n: int, mask, extra_tags) -> RolloutRecord:
    sentences = [f"sentence {k} of {rid}" for k in range(n)]
    spans, pos = [], 0
    for text in sentences:
        spans.append((pos, pos + len(text)))
        pos += len(text) + 1
    tags = [([TAG] if mask[k] else []) + list(extra_tags[k]) for k in range(n)]
    return RolloutRecord(rid, rid.split("/")[-1], "/root", f"/root/{rid}", sentences, spans, tags,
                         "chunks.json", f"text-{rid}-{n}", {}, [])


def random_rollouts(seed: int) -> list[tuple[Rollout, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for k, n in enumerate((2, 9, 14)):
        mats = rng.random((N_LAYERS, N_HEADS, n, n)).astype(np.float32)
        mats[..., rng.random((n, n)) < 0.2] = 0.0  # ties and zeros
        mats = np.tril(mats)
        mask = [bool(x) for x in rng.random(n) < 0.3]
        extra = [(["plan_generation"] if rng.random() < 0.5 else [])
                 + (["common"] if rng.random() < 0.8 else []) for _ in range(n)]  # a majority tag
        matrices = {(layer, head): mats[layer, head].astype(np.float64)
                    for layer in range(N_LAYERS) for head in range(N_HEADS)}
        out.append((Rollout(f"p/r{k}", matrices, mask, tags=extra), mats))
    return out


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """(warehouse connection with kept scores, in-memory connection with inline cells)."""
    from warehouse.store import Warehouse

    data = random_rollouts(3)
    wh = Warehouse(tmp_path_factory.mktemp("kept") / "wh")
    model = ModelInfo(MODEL, N_LAYERS, N_HEADS)
    with wh.write_lock():
        for rollout, mats in data:
            wh.write_attention(rollout_record(rollout.rollout_id, rollout.n, rollout.mask,
                                              rollout.tags), model, mats)
    inline = connect()
    load(inline, [r for r, _ in data], N_LAYERS, N_HEADS, model=MODEL)
    with wh.connect(read_only=True) as con:
        assert con.execute("select count(*) from attention_inline").fetchone() == (0,)
        assert con.execute("select count(*) from kept_scores").fetchone()[0] > 0
        yield con, inline
    inline.close()


PARAMETER_SETS = [
    "",
    f"tag := '{TAG}'",
    "tag := 'plan_generation'",
    "tag := 'common', all_layers := true",
    "layers := [0, 3]",
    "all_layers := true, tag := 'plan_generation'",
    "proximity_ignore := 2",
    "control_depth := false, trim := false",
    "score_type := 'median'",
    "trim := false, layers := [4]",
]
KEYS = ("model", "rollout_id", "layer", "head", "c", "rank")


def assert_same(kept_rows, cell_rows):
    assert len(kept_rows) == len(cell_rows)
    for got, want in zip(kept_rows, cell_rows, strict=True):
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, list):
                assert len(got[key]) == len(value)
                assert all(close(a, b) for a, b in zip(got[key], value, strict=True)), key
            elif isinstance(value, float) or value is None:
                assert close(got[key], value), (key, got, want)
            else:
                assert got[key] == value, key


@pytest.mark.parametrize("params", PARAMETER_SETS)
@pytest.mark.parametrize("macro", ["head_stats", "best_heads", "rollout_ranking",
                                   "vertical_scores", "receiver_head_kurtosis"])
def test_kept_scores_equal_the_computation_from_cells(twins, macro, params):
    kept, inline = twins
    query = f"select * from {macro}({params})"
    order = [k for k in KEYS if k in [d[0] for d in kept.execute(f"describe {query}").fetchall()]]
    query += f" order by {', '.join(order)}"
    assert_same(records(kept, query), records(inline, query))


def test_receiver_defaults_and_views_equal(twins):
    kept, inline = twins
    for view in ("receiver_heads", "rollout_ranking", "best_heads"):
        assert_same(records(kept, f"select * from {view} order by all"),
                    records(inline, f"select * from {view} order by all"))


def test_kept_rows_are_the_kept_scores_of_the_cells(twins):
    kept, _ = twins
    stored = kept.execute("select * from kept_scores order by all").fetchall()
    fresh = kept.execute("select * from kept_scores_of() order by all").fetchall()
    assert len(stored) == len(fresh) == sum(N_LAYERS * N_HEADS * n for n in (2, 9, 14))
    for a, b in zip(stored, fresh, strict=True):
        assert a[:5] == b[:5]
        assert all(close(x, y) for x, y in zip(a[5:], b[5:], strict=True))


def test_rewritten_rollout_updates_its_kept_scores(warehouse):
    rng = np.random.default_rng(5)
    model = ModelInfo(MODEL, 2, 2)
    first = np.tril(rng.random((2, 2, 6, 6)).astype(np.float32))
    second = np.tril(rng.random((2, 2, 8, 8)).astype(np.float32))
    mask6, mask8 = [k == 2 for k in range(6)], [k in (2, 5) for k in range(8)]
    with warehouse.write_lock():
        warehouse.write_attention(rollout_record("r", 6, mask6, [[]] * 6), model, first)
        warehouse.write_attention(rollout_record("x", 6, mask6, [[]] * 6), model, first)
        # same rollout, other sentences: its kept scores must follow, the other's stay
        warehouse.write_attention(rollout_record("r", 8, mask8, [[]] * 8), model, second)
    with warehouse.connect(read_only=True) as con:
        counts = dict(con.execute("select rollout_id, count(*) from kept_scores group by 1").fetchall())
        assert counts == {"r": 2 * 2 * 8, "x": 2 * 2 * 6}
        got = con.execute("select * from kept_scores order by all").fetchall()
        fresh = con.execute("select * from kept_scores_of() order by all").fetchall()
        assert len(got) == len(fresh)
        assert all(close(x, y) for a, b in zip(got, fresh, strict=True)
                   for x, y in zip(a[5:], b[5:], strict=True))
    inline = connect()
    matrices = {(layer, head): second[layer, head].astype(np.float64)
                for layer in range(2) for head in range(2)}
    load(inline, [Rollout("r", matrices, mask8)], 2, 2, model=MODEL)
    with warehouse.connect(read_only=True) as con:
        query = "select * from head_stats(all_layers := true) where rollout_id = 'r' order by all"
        assert_same(records(con, query), records(inline, query))


def test_kept_tag_blocks_are_those_of_the_cells(twins):
    kept, _ = twins
    stored = kept.execute("select * from kept_tag_blocks order by all").fetchall()
    fresh = kept.execute("select * from kept_tag_blocks_of() order by all").fetchall()
    assert [r[:5] for r in stored] == [r[:5] for r in fresh] and stored
    assert all(close(a[5], b[5]) for a, b in zip(stored, fresh, strict=True))


def test_new_tags_without_new_attention_update_the_kept_sums(warehouse):
    rng = np.random.default_rng(9)
    model = ModelInfo(MODEL, 2, 2)
    mats = np.tril(rng.random((2, 2, 7, 7)).astype(np.float32))
    before, after = [k == 2 for k in range(7)], [k in (1, 3, 4) for k in range(7)]
    with warehouse.write_lock():
        warehouse.write_attention(rollout_record("r", 7, before, [[]] * 7), model, mats)
        relabelled = rollout_record("r", 7, after, [[]] * 7)
        assert warehouse.write_rollout(relabelled) == "replaced"  # same text: attention kept
    inline = connect()
    matrices = {(layer, head): mats[layer, head].astype(np.float64)
                for layer in range(2) for head in range(2)}
    load(inline, [Rollout("r", matrices, after)], 2, 2, model=MODEL)
    query = "select * from head_stats(all_layers := true) order by all"
    with warehouse.connect(read_only=True) as con:
        assert_same(records(con, query), records(inline, query))
