"""Tracking speed, loopml against MLflow, side by side (issue 2, item 8).

    python benchmarks/tracking.py                  # everything, 3 repetitions, medians
    python benchmarks/tracking.py --quick          # MLflow (d) with 200 runs instead of 1,000
    python benchmarks/tracking.py --full           # MLflow (c) at 10,000 runs too (~10 min more)
    python benchmarks/tracking.py --tools loopml --work a,d

MLflow is installed on first use into its own venv (``~/.cache/loopml-bench/mlflow-venv``,
``pip install mlflow``: whatever version PyPI gives, printed in the report). loopml is this
checkout's ``src/`` under the current interpreter. Each tool gets a SQLite store in a fresh
temporary folder, and every measurement runs in a fresh subprocess (this same file, called with
``--worker``), so no cache, connection pool or import survives from one repetition to the next.

The work:

(a) 2,000 ``log_metric`` calls in one run, timed from after ``start_run`` until ``end_run`` has
    returned — loopml buffers single calls in a background writer, and ``end_run`` flushes, so
    the time includes the database write.
(b) 10,000 metrics (100 keys x 100 steps) in one run through ``Client.log_batch``. MLflow
    refuses more than 1,000 metrics per call, so its batch is sent in 10 chunks of 1,000.
(c) ``search_runs(filter_string="metrics.m0 > 0.5", order_by=["metrics.m1 DESC"])`` returning a
    pandas DataFrame, over 1,000 and 10,000 runs of 5 params and 5 uniform random metrics
    (about half the runs match). The runs are made with ``create_run`` + ``log_batch`` through
    each tool's client, once per tool and size; each repetition copies that store into a fresh
    folder, makes one warm-up search, and times the second. MLflow is searched at 1,000 runs
    only unless ``--full`` (populating 10,000 MLflow runs takes about ten minutes).
(d) 1,000 runs of 5 params and 5 metrics each through the fluent API (``start_run``,
    ``log_params``, ``log_metrics``, ``end_run``); ``--quick`` makes 200 for MLflow. Reported in
    runs per second, so the two sizes compare.
(e) ``python -c "import X"`` wall time, median of 5, interpreter start included: the
    difference with ``python -c "pass"`` (printed too) drowns in noise for loopml. The same for
    ``import X; X.start_run``, because ``import loopml`` defers loading the tracking code (and
    SQLAlchemy) to first use: that is what a script pays before its first ``start_run``.

Both tools run with their default settings. The machine is shared: figures are medians.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV = Path.home() / ".cache" / "loopml-bench" / "mlflow-venv"
MARKER = "BENCH-RESULT "
FILTER = "metrics.m0 > 0.5"
ORDER_BY = ["metrics.m1 DESC"]
MLFLOW_BATCH_LIMIT = 1_000  # MLflow's MAX_METRICS_PER_BATCH

# Issue 2's targets, and MLflow's figures measured by the team earlier (for reference only).
TARGETS = {
    "a": "≥ 100x MLflow",
    "b": "≥ 20x MLflow",
    "c1000": "—",
    "c10000": "< 0.05 s",
    "d": "≥ 20x MLflow",
    "e": "< 0.3 s",
    "e_api": "—",
}
ANCHORS = {
    "a": "91 calls/s",
    "b": "5,300 metrics/s",
    "c1000": "0.91 s",
    "c10000": "—",
    "d": "18 runs/s",
    "e": "2.7 s",
    "e_api": "—",
}


# --- work done inside a worker subprocess (stdlib only at module level: it also runs under
# --- the MLflow venv's interpreter, which has no loopml) ----------------------------------------


def _values(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.random() for _ in range(n)]


def _loopml_fluent(folder: Path) -> Any:
    import loopml

    loopml.set_tracking_uri(f"sqlite:///{folder}/loopml.db", artifact_uri=str(folder / "art"))
    loopml.set_experiment("bench")
    return loopml


def _mlflow_fluent(folder: Path) -> Any:
    import mlflow

    mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
    mlflow.set_experiment("bench")
    return mlflow


def _client(tool: str, folder: Path) -> Any:
    if tool == "loopml":
        import loopml

        return loopml.Client(
            tracking_uri=f"sqlite:///{folder}/loopml.db", artifact_uri=str(folder / "art")
        )
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db")


def _metric_type(tool: str) -> Any:
    if tool == "loopml":
        from loopml.tracking import Metric
    else:
        from mlflow.entities import Metric
    return Metric


def work_single_metrics(tool: str, folder: Path, n: int) -> dict[str, Any]:
    api = _loopml_fluent(folder) if tool == "loopml" else _mlflow_fluent(folder)
    values = _values(n, seed=1)
    api.start_run()
    start = time.perf_counter()
    for step, value in enumerate(values):
        api.log_metric("loss", value, step=step)
    api.end_run()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rate": n / seconds}


def work_batch(tool: str, folder: Path, n: int) -> dict[str, Any]:
    client = _client(tool, folder)
    metric = _metric_type(tool)
    experiment_id = client.create_experiment("bench")
    run_id = client.create_run(experiment_id).info.run_id
    now = int(time.time() * 1000)
    metrics = [
        metric(f"m{i % 100}", value, now, i // 100) for i, value in enumerate(_values(n, seed=2))
    ]
    chunk = n if tool == "loopml" else MLFLOW_BATCH_LIMIT
    start = time.perf_counter()
    for first in range(0, n, chunk):
        client.log_batch(run_id, metrics=metrics[first : first + chunk])
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rate": n / seconds, "calls": -(-n // chunk)}


def work_populate(tool: str, folder: Path, n: int) -> dict[str, Any]:
    client = _client(tool, folder)
    experiment_id = client.create_experiment("bench")
    rng = random.Random(3)
    now = int(time.time() * 1000)
    if tool == "loopml":
        from loopml.tracking import Metric
    else:
        from mlflow.entities import Metric, Param
    start = time.perf_counter()
    for _ in range(n):
        run_id = client.create_run(experiment_id).info.run_id
        metrics = [Metric(f"m{j}", rng.random(), now, 0) for j in range(5)]
        params = {f"p{j}": str(rng.randint(0, 9)) for j in range(5)}
        if tool == "loopml":
            client.log_batch(run_id, metrics=metrics, params=params)
        else:
            client.log_batch(
                run_id, metrics=metrics, params=[Param(k, v) for k, v in params.items()]
            )
    seconds = time.perf_counter() - start
    if tool == "loopml":
        client.close()
    return {"seconds": seconds, "rate": n / seconds, "experiment_id": experiment_id}


def work_search(tool: str, folder: Path, experiment_id: str) -> dict[str, Any]:
    if tool == "loopml":
        import loopml as api

        api.set_tracking_uri(f"sqlite:///{folder}/loopml.db", artifact_uri=str(folder / "art"))
    else:
        import mlflow as api

        api.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")

    def search() -> Any:
        return api.search_runs(
            experiment_ids=[experiment_id], filter_string=FILTER, order_by=ORDER_BY
        )

    search()  # warm-up: imports pandas, opens the store, fills statement caches
    start = time.perf_counter()
    frame = search()
    seconds = time.perf_counter() - start
    ordered = frame["metrics.m1"].is_monotonic_decreasing and bool(
        (frame["metrics.m0"] > 0.5).all()
    )
    return {"seconds": seconds, "rows": len(frame), "ordered": ordered}


def work_fluent_runs(tool: str, folder: Path, n: int) -> dict[str, Any]:
    api = _loopml_fluent(folder) if tool == "loopml" else _mlflow_fluent(folder)
    values = _values(5 * n, seed=4)
    start = time.perf_counter()
    for i in range(n):
        api.start_run()
        api.log_params({f"p{j}": j * i for j in range(5)})
        api.log_metrics({f"m{j}": values[5 * i + j] for j in range(5)})
        api.end_run()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "rate": n / seconds}


WORKERS = {
    "single": work_single_metrics,
    "batch": work_batch,
    "populate": work_populate,
    "search": work_search,
    "fluent": work_fluent_runs,
}


def worker_main(spec: str) -> None:
    job = json.loads(spec)
    result = WORKERS[job["work"]](job["tool"], Path(job["folder"]), job["arg"])
    print(MARKER + json.dumps(result), flush=True)


# --- the driver ---------------------------------------------------------------------------------


class Tool:
    """One side of the comparison: an interpreter and the environment its workers get."""

    def __init__(self, name: str, python: str, env: dict[str, str], version: str) -> None:
        self.name, self.python, self.env, self.version = name, python, env, version

    def run(self, work: str, folder: Path, arg: Any) -> dict[str, Any]:
        spec = json.dumps({"tool": self.name, "work": work, "folder": str(folder), "arg": arg})
        done = subprocess.run(
            [self.python, str(Path(__file__).resolve()), "--worker", spec],
            cwd=folder,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        for line in reversed(done.stdout.splitlines()):
            if line.startswith(MARKER):
                return json.loads(line[len(MARKER) :])
        raise RuntimeError(
            f"{self.name} worker {work!r} failed (exit {done.returncode}):\n{done.stderr[-3000:]}"
        )


def loopml_tool() -> Tool:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "LOOPML_HOME": ".loopml"}
    version = subprocess.run(
        [sys.executable, "-c", "import loopml; print(loopml.__version__, loopml.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Tool("loopml", sys.executable, env, version)


def mlflow_tool() -> Tool:
    python = VENV / "bin" / "python"
    probe = [str(python), "-c", "import mlflow; print(mlflow.__version__)"]
    if not python.exists() or subprocess.run(probe, capture_output=True).returncode != 0:
        print(f"installing MLflow into {VENV} (one time) ...", file=sys.stderr, flush=True)
        VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "mlflow"], check=True)
    # Each worker sets its tracking URI itself; nothing of loopml's may leak into MLflow's venv.
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "MLFLOW_TRACKING_URI")
    }
    version = subprocess.run(probe, env=env, capture_output=True, text=True, check=True)
    return Tool("mlflow", str(python), env, version.stdout.strip())


def fresh_folder() -> Path:
    return Path(tempfile.mkdtemp(prefix="loopml-bench-"))


def repeat(
    tool: Tool, work: str, arg: Any, times: int, seed_folder: Path | None = None
) -> list[dict[str, Any]]:
    results = []
    for _ in range(times):
        folder = fresh_folder()
        try:
            if seed_folder is not None:
                shutil.copytree(seed_folder, folder, dirs_exist_ok=True)
            results.append(tool.run(work, folder, arg))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    return results


def import_time(tool: Tool, code: str, times: int = 5) -> dict[str, float]:
    folder = fresh_folder()

    def wall(code: str) -> float:
        samples = []
        for _ in range(times):
            start = time.perf_counter()
            subprocess.run([tool.python, "-c", code], cwd=folder, env=tool.env, check=True)
            samples.append(time.perf_counter() - start)
        return statistics.median(samples)

    try:
        bare, loaded = wall("pass"), wall(code)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"seconds": loaded, "bare": bare}


def median(results: list[dict[str, Any]], field: str) -> float:
    return statistics.median(r[field] for r in results)


def measure(
    tools: dict[str, Tool], args: argparse.Namespace, works: set[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """Median figures per tool, keyed like TARGETS.

    Repetitions alternate between the tools, so that both see the same load on a shared
    machine rather than one tool getting the quiet minute and the other the busy one.
    """
    out: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in tools}
    raw: dict[str, dict[str, list[float]]] = {name: {} for name in tools}  # seconds, for --json

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def alternate(
        key: str, jobs: dict[str, tuple[str, Any, Path | None]]
    ) -> dict[str, list[dict[str, Any]]]:
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in jobs}
        for _ in range(args.repeat):
            for name, (work, arg, seed) in jobs.items():
                samples[name] += repeat(tools[name], work, arg, 1, seed_folder=seed)
        for name, results in samples.items():
            raw[name][key] = [r["seconds"] for r in results]
        return samples

    if "a" in works:
        say("(a) 2,000 log_metric calls")
        for name, res in alternate("a", dict.fromkeys(tools, ("single", 2_000, None))).items():
            out[name]["a"] = {
                "rate": median(res, "rate"),
                "seconds": median(res, "seconds"),
                "n": 2_000,
            }
    if "b" in works:
        say("(b) log_batch of 10,000 metrics")
        for name, res in alternate("b", dict.fromkeys(tools, ("batch", 10_000, None))).items():
            out[name]["b"] = {
                "rate": median(res, "rate"),
                "seconds": median(res, "seconds"),
                "calls": res[0]["calls"],
            }
    if "c" in works:
        for size in (1_000, 10_000):
            names = [
                n
                for n in tools
                if n == "loopml" or args.full or size == min(args.mlflow_search_runs, 10_000)
            ]
            seeds: dict[str, Path] = {}
            made: dict[str, dict[str, Any]] = {}
            try:
                for name in names:
                    say(f"(c) populating {size:,} {name} runs")
                    seeds[name] = fresh_folder()
                    made[name] = tools[name].run("populate", seeds[name], size)
                    say(f"    {made[name]['rate']:.0f} runs/s")
                say(f"(c) searching {size:,} runs")
                jobs = {n: ("search", made[n]["experiment_id"], seeds[n]) for n in names}
                for name, res in alternate(f"c{size}", jobs).items():
                    out[name][f"c{size}"] = {
                        "seconds": median(res, "seconds"),
                        "rows": res[0]["rows"],
                        "ordered": all(r["ordered"] for r in res),
                        "populate_rate": made[name]["rate"],
                    }
            finally:
                for seed in seeds.values():
                    shutil.rmtree(seed, ignore_errors=True)
    if "d" in works:
        sizes = {n: 200 if (n == "mlflow" and args.quick) else 1_000 for n in tools}
        say("(d) runs through the fluent API: " + ", ".join(f"{n} {k:,}" for n, k in sizes.items()))
        for name, res in alternate("d", {n: ("fluent", sizes[n], None) for n in tools}).items():
            out[name]["d"] = {
                "rate": median(res, "rate"),
                "seconds": median(res, "seconds"),
                "n": sizes[name],
            }
    if "e" in works:
        say("(e) import time")
        for name, tool in tools.items():
            out[name]["e"] = import_time(tool, f"import {name}")
            out[name]["e_api"] = import_time(tool, f"import {name}; {name}.start_run")
    for name in tools:
        out[name]["samples"] = raw[name]
    return out


def cell(key: str, figure: dict[str, Any] | None) -> str:
    if figure is None:
        return "not run" + (" (needs --full)" if key == "c10000" else "")
    if key == "a":
        return f"{figure['rate']:,.0f} calls/s ({figure['seconds']:.3f} s for {figure['n']:,})"
    if key == "b":
        calls = f", {figure['calls']} calls" if figure["calls"] > 1 else ""
        return f"{figure['rate']:,.0f} metrics/s ({figure['seconds']:.3f} s{calls})"
    if key.startswith("c"):
        return f"{figure['seconds']:.4f} s ({figure['rows']:,} rows)"
    if key == "d":
        return f"{figure['rate']:,.0f} runs/s ({figure['seconds']:.1f} s for {figure['n']:,})"
    return f"{figure['seconds']:.3f} s (bare interpreter: {figure['bare']:.3f} s)"


def ratio(key: str, ours: dict[str, Any] | None, theirs: dict[str, Any] | None) -> float | None:
    if ours is None or theirs is None:
        return None
    if "rate" in ours:
        return float(ours["rate"] / theirs["rate"])
    return float(theirs["seconds"] / ours["seconds"])


def verdict(key: str, ours: dict[str, Any] | None, times: float | None) -> str:
    if ours is None:
        return ""
    if key == "a":
        met = times is not None and times >= 100
    elif key in ("b", "d"):
        met = times is not None and times >= 20
    elif key == "c10000":
        met = ours["seconds"] < 0.05
    elif key == "e":
        met = ours["seconds"] < 0.3
    else:
        return ""
    return "met" if met else ("**missed**" if times is not None or key in ("c10000", "e") else "")


LABELS = {
    "a": "(a) single `log_metric`, 2,000 calls in one run",
    "b": "(b) `log_batch` of 10,000 metrics",
    "c1000": "(c) `search_runs` over 1,000 runs",
    "c10000": "(c) `search_runs` over 10,000 runs",
    "d": "(d) 1,000 runs, 5 params + 5 metrics, fluent API",
    "e": "(e) `import X`",
    "e_api": "(e) `import X; X.start_run`",
}


def report(
    args: argparse.Namespace, tools: dict[str, Tool], figures: dict[str, dict[str, Any]]
) -> str:
    ours, theirs = figures.get("loopml", {}), figures.get("mlflow", {})
    lines = [
        f"Command: `{' '.join(['python', *sys.argv])}`",
        "",
        *(f"- {t.name} {t.version} (`{t.python}`)" for t in tools.values()),
        f"- medians of {args.repeat} runs, each in a fresh subprocess and a fresh SQLite store",
        "",
        "| work | loopml | MLflow | loopml ÷ MLflow | target | MLflow anchor |",
        "|---|---|---|---|---|---|",
    ]
    for key, label in LABELS.items():
        if key not in ours and key not in theirs:
            continue
        times = ratio(key, ours.get(key), theirs.get(key))
        speed = "" if times is None else f"{times:,.1f}x faster"
        target = TARGETS[key]
        check = verdict(key, ours.get(key), times)
        lines.append(
            f"| {label} | {cell(key, ours.get(key)) if 'loopml' in tools else ''} | "
            f"{cell(key, theirs.get(key)) if 'mlflow' in tools else ''} | {speed} | "
            f"{target} {check} | {ANCHORS[key]} |"
        )
    notes = []
    if "b" in theirs:
        notes.append(
            f"(b) MLflow caps `log_batch` at {MLFLOW_BATCH_LIMIT:,} metrics per call: "
            f"its 10,000 were sent in {theirs['b']['calls']} calls; loopml's in one."
        )
    if "d" in theirs and theirs["d"]["n"] != 1_000:
        notes.append(f"(d) MLflow made {theirs['d']['n']:,} runs (--quick); compare runs/s.")
    for key in ("c1000", "c10000"):
        for name, figs in (("loopml", ours), ("MLflow", theirs)):
            if key in figs and not figs[key]["ordered"]:
                notes.append(f"{key}: {name}'s result was NOT filtered/ordered as asked")
    if notes:
        lines += ["", *(f"- {note}" for note in notes)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="repetitions per figure (median)")
    parser.add_argument("--tools", default="loopml,mlflow", help="comma list: loopml,mlflow")
    parser.add_argument("--work", default="a,b,c,d,e", help="comma list of a,b,c,d,e")
    parser.add_argument("--quick", action="store_true", help="MLflow (d) with 200 runs")
    parser.add_argument("--full", action="store_true", help="MLflow (c) at 10,000 runs too")
    parser.add_argument(
        "--mlflow-search-runs",
        type=int,
        default=1_000,
        help="runs MLflow's search is measured over without --full",
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args.worker)
        return

    works = set(args.work.split(","))
    names = args.tools.split(",")
    tools = {}
    if "loopml" in names:
        tools["loopml"] = loopml_tool()
    if "mlflow" in names:
        tools["mlflow"] = mlflow_tool()
    for tool in tools.values():
        print(f"{tool.name} {tool.version}", file=sys.stderr, flush=True)
    figures = measure(tools, args, works)
    text = report(args, tools, figures)
    print(text)
    if args.json:
        versions = {name: tool.version for name, tool in tools.items()}
        args.json.write_text(json.dumps({"versions": versions, "figures": figures}, indent=2))


if __name__ == "__main__":
    main()
