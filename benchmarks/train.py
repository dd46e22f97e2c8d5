"""How much does loopml's training pipeline cost on top of the model fit itself?

The same random forest is fitted on the same 80,000 rows (of a 100,000-row, 20-feature
regression data set) twice:

- **plain scikit-learn**: ``RandomForestRegressor.fit`` on a NumPy matrix, then ``predict``
  and R² on the 20,000 test rows — what a script without any MLOps does;
- **loopml**: ``run_project`` on a one-candidate project (nothing to search, so no validation
  folds are fitted), which also ingests and versions the CSV (Delta Lake, profile), fits the
  feature transform with the model, tracks params/metrics, scores the test split, draws the
  plots and the HTML report, exports ONNX and checks parity, and registers the version.

Reported: the total against the plain fit, and — less sensitive to a busy machine, since
both come from the same process — the time loopml spends *not* fitting (total minus its own
refit) as a share of that fit, whole and without the data ingestion and the ONNX packaging
(which plain scikit-learn does not do at all). Target: under 20 % on top of the fit.

    python benchmarks/train.py                 # 100,000 rows, 20 trees, median of 1 run
    python benchmarks/train.py --repeat 3 --json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

PROJECT = """\
name: bench
data: {{source: {{type: file, path: data.csv}}}}
target: y
task: regression
features: [{features}]
split: {{method: holdout, test_size: 0.2}}
candidates:
  - name: random_forest
    params: {{n_estimators: {trees}, max_depth: {depth}, n_jobs: -1}}
    space: {{}}
search: {{seed: 0}}
metric: rmse
evaluation: {{plots: true, report: true}}
"""


def make_data(rows: int, features: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    weights = rng.normal(size=features)
    y = X @ weights + np.sin(3 * X[:, 0]) * 2 + rng.normal(scale=0.5, size=rows)
    frame = pd.DataFrame(X, columns=[f"f{i:02d}" for i in range(features)])
    frame["y"] = y
    return frame


def plain(frame: pd.DataFrame, trees: int, depth: int) -> dict[str, float]:
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.metrics import r2_score
    from sklearn.model_selection import ShuffleSplit

    X = frame.drop(columns=["y"]).to_numpy()
    y = frame["y"].to_numpy()
    train, test = next(ShuffleSplit(1, test_size=0.2, random_state=0).split(X))
    model = RandomForestRegressor(n_estimators=trees, max_depth=depth, n_jobs=-1, random_state=0)
    started = time.perf_counter()
    model.fit(X[train], y[train])
    fit = time.perf_counter() - started
    r2 = r2_score(y[test], model.predict(X[test]))
    return {"fit": fit, "total": time.perf_counter() - started, "r2": float(r2)}


def loopml_run(folder: Path, home: Path) -> dict[str, float]:
    from loopml.config import Settings
    from loopml.pipeline.runner import run_project

    started = time.perf_counter()
    result = run_project(folder, settings=Settings(home=home))
    total = time.perf_counter() - started
    return {
        "total": total,
        "r2": result.metrics["r2"],
        **{f"stage.{k}": v for k, v in result.seconds.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--trees", type=int, default=20)
    parser.add_argument("--depth", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    frame = make_data(args.rows, args.features)
    # Warm up imports (sklearn, onnx, deltalake...) so neither side pays them.
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "warm"
        small.mkdir()
        make_data(500, args.features).to_csv(small / "data.csv", index=False)
        _write_project(small, args)
        loopml_run(small, Path(tmp) / "home")

    plains, runs = [], []
    for _ in range(args.repeat):
        plains.append(plain(frame, args.trees, args.depth))
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "bench"
            folder.mkdir()
            frame.to_csv(folder / "data.csv", index=False)
            _write_project(folder, args)
            runs.append(loopml_run(folder, Path(tmp) / "home"))

    fit = statistics.median(p["fit"] for p in plains)
    total = statistics.median(r["total"] for r in runs)
    stages = {
        k.removeprefix("stage."): statistics.median(r[k] for r in runs)
        for k in runs[0]
        if k.startswith("stage.")
    }
    refit = stages.get("refit", 0.0)
    around = total - refit  # everything the pipeline does besides fitting the model
    without = around - stages.get("ingest", 0.0) - stages.get("package", 0.0)
    report = {
        "rows": args.rows,
        "features": args.features,
        "trees": args.trees,
        "depth": args.depth,
        "repeat": args.repeat,
        "plain_fit_s": fit,
        "plain_r2": plains[0]["r2"],
        "loopml_total_s": total,
        "loopml_r2": runs[0]["r2"],
        "loopml_refit_s": stages.get("refit"),
        "stages_s": stages,
        "overhead_total_pct": 100 * (total - fit) / fit,
        "non_fit_s": around,
        "non_fit_pct_of_fit": 100 * around / refit,
        "non_fit_without_ingest_and_onnx_s": without,
        "non_fit_without_ingest_and_onnx_pct_of_fit": 100 * without / refit,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{args.rows:,} rows x {args.features} features, random forest "
            f"({args.trees} trees, max_depth {args.depth}), median of {args.repeat}"
        )
        print(f"  plain scikit-learn fit        {fit:8.2f} s   (test R² {plains[0]['r2']:.4f})")
        print(f"  loopml run_project, total     {total:8.2f} s   (test R² {runs[0]['r2']:.4f})")
        for name, seconds in stages.items():
            print(f"    {name:<28}{seconds:8.2f} s")
        print(f"  total vs plain fit            {report['overhead_total_pct']:+7.1f} %")
        print(
            f"  not fitting (total - refit)   {around:8.2f} s = "
            f"{report['non_fit_pct_of_fit']:.1f} % of the fit"
        )
        print(
            f"    without ingest and ONNX     {without:8.2f} s = "
            f"{report['non_fit_without_ingest_and_onnx_pct_of_fit']:.1f} % of the fit"
        )
    return 0


def _write_project(folder: Path, args: argparse.Namespace) -> None:
    features = ", ".join(
        f"{{column: f{i:02d}, transform: passthrough}}" for i in range(args.features)
    )
    (folder / "loopml.yaml").write_text(
        PROJECT.format(features=features, trees=args.trees, depth=args.depth), encoding="utf-8"
    )


if __name__ == "__main__":
    sys.exit(main())
