"""Microbenchmark: building the onnxruntime feed from a parsed request, as the server does.

    python benchmarks/feed.py                  # every case, medians of 15 repeats
    python benchmarks/feed.py --repeat 31 --only one-row
    python benchmarks/feed.py --json before.json
    python benchmarks/feed.py --compare before.json   # adds a before column and the ratio

Run by hand (not a test). Each case times exactly what ``POST /predict`` does between parsing
the JSON body and running the model: ``request_builder(document)`` (checks the document's
form) and the returned function applied to the loaded model's feed builder (``model.feeds``,
what :func:`loopml.serve.state.infer` calls). The models are real ONNX files, loaded by the
server's own :class:`~loopml.serve.models.ModelLoader`, so the feed builder is the one a
running server holds. The ``v2`` case times the Open Inference Protocol's typed-array path
(``model.feeds.arrays``), after the tensor JSON is decoded.

Figures are microseconds per request: the median (and the minimum) over ``--repeat`` repeats
of the mean of a timed loop sized to about 0.1 s. Loops are timed in this process's CPU time
(``time.process_time``), so other processes on the shared machine slow a run down less than
wall time would show; still, compare medians of several runs, never single figures. To
compare two versions of the code, run the script with ``PYTHONPATH`` pointing at each
version's ``src`` in turn, alternating, and ``--compare`` the JSON files.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np


def build_models(folder: Path) -> dict[str, Path]:
    """The models the cases hit, written as ONNX files into ``folder``."""
    import pandas as pd
    from skl2onnx import to_onnx
    from sklearn.compose import make_column_transformer
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from loopml.package import package_model

    rng = np.random.default_rng(0)
    out: dict[str, Path] = {}
    # The article's model: one double column "x", packaged by loopml.
    x = pd.DataFrame({"x": np.arange(10.0)})
    out["linear"] = folder / "linear.onnx"
    out["linear"].write_bytes(
        package_model(LinearRegression().fit(x, 2 * x["x"]), x, task="regression").onnx_bytes
    )
    # 20 float32 features in one [-1, 20] tensor: a plain skl2onnx model (the forest).
    features = rng.normal(size=(300, 20)).astype(np.float32)
    forest = RandomForestRegressor(10, max_depth=4, random_state=0).fit(features, features[:, 0])
    out["forest"] = folder / "forest.onnx"
    out["forest"].write_bytes(to_onnx(forest, features[:1]).SerializeToString())
    # 20 double columns, packaged by loopml (what `loopml run` registers for a table).
    wide = pd.DataFrame(features.astype(np.float64), columns=[f"f{i}" for i in range(20)])
    out["wide"] = folder / "wide.onnx"
    out["wide"].write_bytes(
        package_model(
            LinearRegression().fit(wide, features[:, 0]), wide, task="regression"
        ).onnx_bytes
    )
    # Mixed types: a number and a string column into a classifier, packaged by loopml.
    frame = pd.DataFrame(
        {"age": rng.uniform(18, 80, 200), "plan": rng.choice(["basic", "pro"], 200)}
    )
    labels = np.where((frame.age > 40) & (frame.plan == "pro"), "churn", "stay")
    churn = make_pipeline(
        make_column_transformer((StandardScaler(), ["age"]), (OneHotEncoder(), ["plan"])),
        LogisticRegression(),
    ).fit(frame, labels)
    out["churn"] = folder / "churn.onnx"
    out["churn"].write_bytes(package_model(churn, frame, task="binary").onnx_bytes)
    return out


def load(files: dict[str, Path]) -> dict[str, Any]:
    """Each file loaded as the server loads it; returns the loaded models by name."""
    from loopml.serve import FileSource, ServeSettings
    from loopml.serve.batching import Load
    from loopml.serve.models import ModelLoader

    settings = ServeSettings(model_files={name: str(path) for name, path in files.items()})
    loader = ModelLoader(FileSource({n: str(p) for n, p in files.items()}), settings, Load())
    return {name: loader.load(name, "1") for name in files}


def cases(models: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """Name -> a no-argument function doing one request's feed build."""
    from loopml.serve.protocols.predict import request_builder

    rng = np.random.default_rng(1)
    rows_20 = rng.normal(size=(100, 20)).round(6).tolist()

    def predict(model: str, document: Any) -> Callable[[], Any]:
        feeds = models[model].feeds
        return lambda: request_builder(document)(feeds)

    wide_records = [{f"f{i}": v for i, v in enumerate(row)} for row in rows_20]
    v2_arrays = {"x": np.array([[1.0]])}
    linear_feeds = models["linear"].feeds
    return {
        "one-row (instances [[1.0]], 1 double input)": predict("linear", {"instances": [[1.0]]}),
        "100x20 rows -> [-1, 20] float32 tensor": predict("forest", {"instances": rows_20}),
        "100x20 rows -> 20 double columns": predict("wide", {"instances": rows_20}),
        "100x20 records -> 20 double columns": predict("wide", {"instances": wide_records}),
        'records [{"x": 1.0}]': predict("linear", {"instances": [{"x": 1.0}]}),
        'columns {"x": [1.0, 2.0]}': predict("linear", {"inputs": {"x": [1.0, 2.0]}}),
        "mixed one row [[60.0, 'pro']] (double + string)": predict(
            "churn", {"instances": [[60.0, "pro"]]}
        ),
        "mixed records, 1 row (double + string)": predict(
            "churn", {"instances": [{"age": 60.0, "plan": "pro"}]}
        ),
        "mixed columns, 2 rows (double + string)": predict(
            "churn", {"inputs": {"age": [60.0, 20.0], "plan": ["pro", "basic"]}}
        ),
        "v2 typed array, 1 row": lambda: linear_feeds.arrays(dict(v2_arrays), "inputs"),
    }


def measure(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """(median, min) microseconds per call over ``repeat`` timed loops."""
    clock = time.process_time
    fn()  # warm caches (NumPy's first-call paths)
    started = clock()
    calls = 0
    while clock() - started < 0.02:
        fn()
        calls += 1
    loops = max(10, int(calls * 5))  # ~0.1 s per repeat
    per_call = []
    for _ in range(repeat):
        begin = clock()
        for _ in range(loops):
            fn()
        per_call.append((clock() - begin) / loops * 1e6)
    return statistics.median(per_call), min(per_call)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--only", help="run the cases whose name contains this text")
    parser.add_argument("--json", type=Path, help="write {case: [median_us, min_us]} here")
    parser.add_argument("--compare", type=Path, help="a --json file to show as 'before'")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        models = load(build_models(Path(tmp)))
    todo = {k: v for k, v in cases(models).items() if not args.only or args.only in k}
    before = json.loads(args.compare.read_text()) if args.compare else {}
    results: dict[str, tuple[float, float]] = {}
    extra = " before median / min µs | after ÷ before (median, min) |" if before else ""
    print("| case | median µs | min µs |" + extra)
    print("|---|---|---|" + ("---|---|" if before else ""))
    for name, fn in todo.items():
        median, low = measure(fn, args.repeat)
        results[name] = (median, low)
        row = f"| {name} | {median:.2f} | {low:.2f} |"
        if name in before:
            b_median, b_low = before[name]
            row += f" {b_median:.2f} / {b_low:.2f} | {median / b_median:.2f}, {low / b_low:.2f} |"
        print(row, flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    print(f"\n`python {' '.join(sys.argv)}`, repeat={args.repeat}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
