"""Data-stage benchmark: loopml's contract checks and ingestion against Great Expectations.

    python benchmarks/data.py                 # everything (GX installed on first run)
    python benchmarks/data.py --skip-gx       # loopml only
    python benchmarks/data.py --only stream   # just the 5,000,000-row streaming run

Data as in issue 3's anchor: 1,000,000 rows x 26 columns (id, 20 numeric, 5 categorical),
written once as CSV and Parquet under ~/.cache/loopml-bench/data. The suite has 52 rules:
not-null on every column, min-max range per numeric column, allowed set per categorical
column, id unique; GX gets the same 52 expectations. Every measurement is a fresh process
(whole-process wall time: interpreter start, imports, reading, checking), median of
``--repeat`` runs, with the child's peak RSS from ``wait4``.

Great Expectations goes into its own venv (~/.cache/loopml-bench/gx) so it never touches
loopml's environment; nothing is downloaded at run time otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CACHE = Path(os.environ.get("LOOPML_BENCH_CACHE", Path.home() / ".cache" / "loopml-bench"))
DATA = CACHE / "data"
GX_VENV = CACHE / "gx"
NUMERIC = [f"x{i}" for i in range(1, 21)]
CATEGORICAL = [f"c{j}" for j in range(1, 6)]
CATEGORIES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]

GENERATE = """
import sys
import numpy as np, polars as pl
rows, csv, parquet = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rng = np.random.default_rng(0)
chunk = 1_000_000
for start in range(0, rows, chunk):
    n = min(chunk, rows - start)
    cols = {"id": np.arange(start, start + n)}
    for i in range(1, 21):
        cols[f"x{i}"] = rng.normal(i, 1.0 + i / 10, n)
    cats = CATEGORIES
    for j in range(1, 6):
        cols[f"c{j}"] = rng.choice(cats[: 3 + j % 4], n)
    frame = pl.DataFrame(cols)
    with open(csv, "ab" if start else "wb") as fh:
        frame.write_csv(fh, include_header=start == 0)
    if parquet != "-" and start == 0 and rows <= chunk:
        frame.write_parquet(parquet)
""".replace("CATEGORIES", repr(CATEGORIES))

GX_SCRIPT = """
import json, sys
import great_expectations as gx
import pandas as pd
rules = json.load(open(sys.argv[2]))
frame = pd.read_parquet(sys.argv[1])
context = gx.get_context(mode="ephemeral")
batch_definition = (
    context.data_sources.add_pandas("bench")
    .add_dataframe_asset("frame")
    .add_batch_definition_whole_dataframe("whole")
)
suite = context.suites.add(gx.ExpectationSuite(name="bench"))
E = gx.expectations
for rule in rules:
    if rule["kind"] == "not_null":
        suite.add_expectation(E.ExpectColumnValuesToNotBeNull(column=rule["column"]))
    elif rule["kind"] == "range":
        suite.add_expectation(E.ExpectColumnValuesToBeBetween(
            column=rule["column"], min_value=rule["min"], max_value=rule["max"]))
    elif rule["kind"] == "allowed":
        suite.add_expectation(E.ExpectColumnValuesToBeInSet(
            column=rule["column"], value_set=rule["values"]))
    elif rule["kind"] == "unique":
        suite.add_expectation(E.ExpectColumnValuesToBeUnique(column=rule["column"]))
result = batch_definition.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
print(json.dumps({"success": result.success, "expectations": len(result.results)}))
"""


def run(
    cmd: list[str], *, env: dict[str, str] | None = None, stdout: int | None = None
) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (MiB) and exit code of one fresh process."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        cmd, env=env, stdout=stdout or subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0 and proc.stderr is not None:
        sys.stderr.write(proc.stderr.read().decode(errors="replace")[-2000:])
    return elapsed, usage.ru_maxrss // 1024, code


def median_of(repeat: int, cmd: list[str], **kw: object) -> tuple[float, int]:
    times, peaks = [], []
    for _ in range(repeat):
        elapsed, peak, code = run(cmd, **kw)  # type: ignore[arg-type]
        if code != 0:
            raise SystemExit(f"command failed ({code}): {' '.join(cmd)}")
        times.append(elapsed)
        peaks.append(peak)
    return statistics.median(times), max(peaks)


def ensure_data(rows: int) -> tuple[Path, Path | None]:
    DATA.mkdir(parents=True, exist_ok=True)
    csv = DATA / f"bench_{rows}.csv"
    parquet = DATA / f"bench_{rows}.parquet" if rows <= 1_000_000 else None
    if not csv.exists() or (parquet is not None and not parquet.exists()):
        print(f"generating {rows:,} rows into {DATA} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-c", GENERATE, str(rows), str(csv), str(parquet or "-")], check=True
        )
    return csv, parquet


def write_rules(parquet: Path) -> tuple[Path, Path]:
    """The 52 rules as a loopml contract and as a JSON list for GX (ranges from the data)."""
    import polars as pl
    import yaml

    frame = pl.read_parquet(parquet)
    rules: list[dict[str, object]] = []
    columns: dict[str, dict[str, object]] = {
        "id": {"type": "integer", "nullable": False, "unique": True}
    }
    for c in ["id", *NUMERIC, *CATEGORICAL]:
        rules.append({"kind": "not_null", "column": c})
    for c in NUMERIC:
        low, high = float(frame[c].min()), float(frame[c].max())  # type: ignore[arg-type]
        rules.append({"kind": "range", "column": c, "min": low, "max": high})
        columns[c] = {"type": "float", "nullable": False, "min": low, "max": high}
    for c in CATEGORICAL:
        values = sorted(frame[c].unique().to_list())
        rules.append({"kind": "allowed", "column": c, "values": values})
        columns[c] = {"type": "string", "nullable": False, "allowed": values}
    rules.append({"kind": "unique", "column": "id"})
    assert len(rules) == 52
    contract = DATA / "contract.yaml"
    contract.write_text(yaml.safe_dump({"name": "bench", "columns": columns}, sort_keys=False))
    rules_json = DATA / "rules.json"
    rules_json.write_text(json.dumps(rules))
    return contract, rules_json


def ensure_gx() -> Path:
    python = GX_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing Great Expectations into {GX_VENV} ...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(GX_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "great_expectations", "pyarrow"], check=True
        )
    return python


def gx_version(python: Path) -> str:
    out = subprocess.run(
        [str(python), "-c", "import great_expectations as g; print(g.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def loopml_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOOPML_")}
    env["LOOPML_HOME"] = str(home)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=5_000_000, help="rows for the streaming run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-gx", action="store_true")
    parser.add_argument("--only", choices=["validate", "ingest", "stream"], default=None)
    args = parser.parse_args()

    table: list[tuple[str, str, str]] = []
    csv, parquet = ensure_data(args.rows)
    assert parquet is not None
    contract, rules_json = write_rules(parquet)
    loopml = [sys.executable, "-m", "loopml.cli.main"]
    scratch = Path(tempfile.mkdtemp(prefix="loopml-bench-"))
    try:
        if args.only in (None, "validate"):
            if not args.skip_gx:
                gx = ensure_gx()
                script = DATA / "gx_validate.py"
                script.write_text(GX_SCRIPT)
                gx_time, gx_rss = median_of(
                    args.repeat, [str(gx), str(script), str(parquet), str(rules_json)]
                )
                table.append(
                    (
                        f"Great Expectations {gx_version(gx)}: 52 rules, Parquet",
                        f"{gx_time:.2f} s",
                        f"{gx_rss} MiB",
                    )
                )
            ours, ours_rss = median_of(
                args.repeat,
                [*loopml, "data", "validate", str(parquet), "--contract", str(contract), "--json"],
                env=loopml_env(scratch / "validate"),
            )
            table.append(
                ("loopml data validate: 52 rules, Parquet", f"{ours:.2f} s", f"{ours_rss} MiB")
            )
            if not args.skip_gx:
                table.append(("ratio GX / loopml", f"{gx_time / ours:.1f}x", ""))
        if args.only in (None, "ingest"):
            times, peaks = [], []
            for i in range(args.repeat):
                home = scratch / f"ingest{i}"
                elapsed, peak, code = run(
                    [
                        *loopml,
                        "data",
                        "ingest",
                        str(csv),
                        "--name",
                        "bench",
                        "--clean",
                        "--contract",
                        str(contract),
                        "--json",
                    ],
                    env=loopml_env(home),
                )
                if code != 0:
                    raise SystemExit("ingest failed")
                times.append(elapsed)
                peaks.append(peak)
                shutil.rmtree(home, ignore_errors=True)
            table.append(
                (
                    f"loopml data ingest --clean --contract: {args.rows:,}-row CSV "
                    "-> validated, cleaned Delta version + profile",
                    f"{statistics.median(times):.2f} s",
                    f"{max(peaks)} MiB",
                )
            )
        if args.only in (None, "stream"):
            big_csv, _ = ensure_data(args.big)
            home = scratch / "stream"
            elapsed, peak, code = run(
                [
                    *loopml,
                    "data",
                    "ingest",
                    str(big_csv),
                    "--name",
                    "big",
                    "--clean",
                    "--contract",
                    str(contract),
                    "--json",
                ],
                env=loopml_env(home),
            )
            if code != 0:
                raise SystemExit("streaming ingest failed")
            size = big_csv.stat().st_size / 2**20
            table.append(
                (
                    f"loopml data ingest --clean --contract: {args.big:,}-row CSV "
                    f"({size:,.0f} MiB), streamed in 500,000-row batches",
                    f"{elapsed:.2f} s",
                    f"{peak} MiB",
                )
            )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    width = max(len(r[0]) for r in table)
    print(f"\n{'work':<{width}} | {'time (median)':>13} | {'peak RSS':>9}")
    print(f"{'-' * width}-|-{'-' * 13}-|-{'-' * 9}")
    for work, seconds, rss in table:
        print(f"{work:<{width}} | {seconds:>13} | {rss:>9}")


if __name__ == "__main__":
    main()
