"""Size and power of head_pvalues on real traces: planted null and real labels.

Runs on the warehouse that `bench/scale_store.py --out DIR` leaves (the shared math
traces with a random-weight Qwen3 at Qwen3-4B's head grid). It replaces DIR/root's links
with copies of the traces, adds planted tags to their chunks_labeled.json, reloads them
(`load`: tags only, the attention stays) and asks `head_pvalues` with its defaults:

- ``null_pos_K``: about 6% (--share) of the analysed sentences, drawn with probability rising as
  position cubed (labels that carry nothing but position, as VA sits late in traces);
- ``null_uni_K``: as many sentences drawn uniformly;
- ``null_len_K``: as many sentences drawn with probability rising as length squared
  (labels that carry nothing but sentence length: long sentences receive more attention);
- ``planted_H``: in each rollout the sentences head H of a representative layer (the
  middle one, or --planted-layer) attends to most (its largest kept vertical scores), as
  many as the position tags; one tag per head H < --planted-heads, so power is measured
  over rollouts x heads.

Prints the share of per-head p-values <= 0.05 for each null family (the calibrated null
should stay near 5%) and the share of (rollout, planted head) pairs where that head has
p <= 0.05 (power).

    python bench/scale_store.py --out /tmp/scale
    python bench/null_calibration.py --out /tmp/scale --tags 4
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ALPHA = 0.05
SHARE = 0.06  # default share of the analysed sentences a planted tag labels (--share)
FAMILIES = ("pos", "uni", "len")  # the null tags' biases: position, none, sentence length


def own_copies(root: Path) -> None:
    """Replace every linked rollout directory under root with a copy (its JSON is edited)."""
    for link in sorted(p for p in root.rglob("*") if p.is_symlink()):
        target = link.resolve()
        link.unlink()
        shutil.copytree(target, link)


def null_draw(rng: np.random.Generator, lengths: list[int], count: int, family: str) -> list[int]:
    """count analysed sentences (trim: 1..n-2) drawn with the family's bias."""
    n = len(lengths)
    candidates = np.arange(1, n - 1)
    weights = {"pos": (candidates / n) ** 3, "uni": np.ones(len(candidates)),
               "len": np.asarray(lengths, dtype=float)[1:n - 1] ** 2}[family]
    return sorted(rng.choice(candidates, size=count, replace=False, p=weights / weights.sum()).tolist())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the directory of bench/scale_store.py --out")
    parser.add_argument("--tags", type=int, default=4, help="null tags of each kind")
    parser.add_argument("--planted-heads", type=int, default=32, help="heads 0..N-1 get a planted tag each")
    parser.add_argument("--planted-layer", type=int, choices=(1, 2, 3), default=2,
                        help="which representative layer (early, middle, late) the planted heads are in")
    parser.add_argument("--share", type=float, default=SHARE,
                        help="share of the analysed sentences each planted tag labels (at least 2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from warehouse.store import Warehouse

    warehouse = Warehouse(args.out / "wh")
    with warehouse.connect(read_only=True) as con:
        layer = con.execute("select layers[?] from representative_layers",
                            [args.planted_layer]).fetchall()[0][0]
        rows = con.execute(
            "select rollouts.rollout_id, rollouts.n_sentences, kept.head, "
            "list(kept.idx order by kept.vertical_score desc) filter (where kept.vertical_score is not null) "
            "from rollouts inner join kept_scores as kept using (rollout_id) "
            "where kept.layer = ? and kept.head < ? group by all order by all",
            [layer, args.planted_heads]).fetchall()
        lengths = dict(con.execute(
            "select rollout_id, list(length(text) order by idx) from sentences group by all").fetchall())
    by_rollout: dict[str, tuple[int, dict[int, list[int]]]] = {}
    for rollout_id, n, head, by_score in rows:
        by_rollout.setdefault(rollout_id, (n, {}))[1][head] = by_score
    root = args.out / "root"
    own_copies(root)
    rng = np.random.default_rng(args.seed)
    for rollout_id, (n, by_head) in by_rollout.items():
        count = max(2, round(args.share * (n - 2)))
        planted: dict[int, list[str]] = {}
        for k in range(args.tags):
            for family in FAMILIES:
                for idx in null_draw(rng, lengths[rollout_id], count, family):
                    planted.setdefault(idx, []).append(f"null_{family}_{k}")
        for head, by_score in by_head.items():
            for idx in by_score[:count]:
                planted.setdefault(idx, []).append(f"planted_{head}")
        path = root / rollout_id / "chunks_labeled.json"
        chunks = json.loads(path.read_text(encoding="utf-8"))
        for position, chunk in enumerate(chunks):
            extra = planted.get(position, [])  # labels are taken by position
            chunk["function_tags"] = [t for t in chunk.get("function_tags") or []
                                      if not t.startswith(("null_", "planted"))] + extra
        path.write_text(json.dumps(chunks), encoding="utf-8")

    loaded = subprocess.run([sys.executable, str(ROOT / "cli.py"), "load", str(root), "--warehouse",
                             str(warehouse.dir)], capture_output=True, text=True)
    if loaded.returncode != 0:
        sys.exit(f"load failed: {loaded.stdout}{loaded.stderr}")

    with warehouse.connect(read_only=True) as con:
        print(f"# {len(by_rollout)} rollouts, head_pvalues defaults (null_model 'position', 1,000 "
              f"permutations, representative layers); tags of {args.share:.0%} of the sentences; "
              f"planted heads: layer {layer}, heads 0-{args.planted_heads - 1}")
        for family in (f"null_{f}" for f in FAMILIES):
            for null_model in ("position", "uniform"):
                share, tests = con.execute(
                    "select avg((p_value <= ?)::integer), count(p_value) "
                    "from head_pvalues(all_tags := true, null_model := ?) where tag like ?",
                    [ALPHA, null_model, f"{family}_%"]).fetchone()
                print(f"{family} labels, null_model '{null_model}': {share:.1%} of {tests:,} per-head "
                      f"p-values <= {ALPHA}")
        for null_model in ("position", "uniform"):
            found, total = con.execute(
                "select count(*) filter (where p_value <= ?), count(*) "
                "from head_pvalues(all_tags := true, null_model := ?) "
                "where tag like 'planted_%' and layer = ? and tag = 'planted_' || head",
                [ALPHA, null_model, layer]).fetchone()
            print(f"planted labels, null_model '{null_model}': the planted head has p <= {ALPHA} in "
                  f"{found} of {total} (rollout, head) pairs ({found / max(total, 1):.1%})")


if __name__ == "__main__":
    main()
