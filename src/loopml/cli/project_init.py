"""``loopml init``: write a starting ``loopml.yaml`` from flags, a look at the data, and answers.

Whatever is not given as a flag is asked for when the terminal is interactive, with a
default worked out from the data (the target's type decides the task, the row count the
split); without a terminal (or with ``--yes``) the defaults are taken, and what has no
default (the data file, the target) must be a flag. The file written is validated like any
project file before it is saved.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loopml.errors import AlreadyExistsError, ConfigError

__all__ = ["guess_task", "scaffold"]

Ask = Callable[[str, "str | None"], str]
Choose = Callable[[str, list[str], str], str]
_DATA_SUFFIXES = (".csv", ".parquet", ".jsonl", ".json")


def scaffold(
    path: Path,
    *,
    name: str | None,
    data: str | None,
    target: str | None,
    task: str | None,
    metric: str | None,
    candidates: str | None,
    trials: int,
    interactive: bool,
    force: bool,
    ask: Ask,
    choose: Choose,
) -> str:
    """Write ``path/loopml.yaml`` and return its text."""
    import yaml

    from loopml.train.metrics import metrics_for_task
    from loopml.train.project import DEFAULT_CANDIDATES, DEFAULT_METRIC, parse_project

    folder = Path(path)
    file = folder / "loopml.yaml"
    if file.exists() and not force:
        raise AlreadyExistsError(
            f"{file} already exists", hint="pass --force to overwrite it, or edit it by hand"
        )
    default_name = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.absolute().name).strip("-.") or "project"
    if name is None:
        name = ask("Project name", default_name) if interactive else default_name
    if data is None:
        found = sorted(p.name for p in folder.glob("*") if p.suffix.lower() in _DATA_SUFFIXES)
        if interactive:
            data = ask("Data file (relative to the project folder)", found[0] if found else None)
        elif len(found) == 1:
            data = found[0]
        else:
            raise ConfigError(
                "loopml init needs --data (the training data file)",
                hint=f"files here: {', '.join(found)}" if found else "e.g. --data data.csv",
            )
    sample = _sample(folder / data)
    columns = [str(c) for c in sample.columns]
    if target is None:
        if not interactive:
            raise ConfigError(
                "loopml init needs --target (the column to predict)",
                hint=f"columns of {data}: {', '.join(columns)}",
            )
        target = choose("Column to predict", columns, columns[-1])
    if target not in columns:
        raise ConfigError(
            f"--target has value {target!r}, which is not a column of {data}",
            hint=f"columns: {', '.join(columns)}",
        )
    guessed = guess_task(sample[target])
    if task is None:
        task = (
            choose("Task", ["regression", "binary", "multiclass"], guessed)
            if interactive
            else guessed
        )
    if task not in DEFAULT_METRIC:
        raise ConfigError(
            f"--task has value {task!r}; valid options: regression, binary, multiclass"
        )
    if metric is None:
        default_metric = DEFAULT_METRIC[task]
        metric = (
            choose("Primary metric", metrics_for_task(task), default_metric)
            if interactive
            else default_metric
        )
    names = [c.strip() for c in candidates.split(",")] if candidates else DEFAULT_CANDIDATES[task]
    document: dict[str, Any] = {
        "name": name,
        "data": {"source": {"type": "file", "path": data}},
        "target": target,
        "task": task,
        "split": _split_for(len(sample)),
        "candidates": names,
        "search": {"trials": trials, "seed": 0},
        "metric": metric,
        "gates": {},
        "model": {"name": name},
    }
    text = (
        "# loopml project file: `loopml schema` lists every key, `loopml run` executes it.\n"
        + yaml.safe_dump(document, sort_keys=False)
    )
    parse_project(text, filename=str(file))  # never write a file `loopml run` would reject
    folder.mkdir(parents=True, exist_ok=True)
    file.write_text(text, encoding="utf-8")
    return text


def guess_task(target: Any) -> str:
    """``binary`` for two values, ``regression`` for numbers with many values, else multiclass."""
    import pandas as pd

    values = target.dropna()
    distinct = values.nunique()
    if distinct == 2:
        return "binary"
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and (pd.api.types.is_float_dtype(values) or distinct > 20):
        return "regression"
    return "multiclass"


def _split_for(rows: int) -> dict[str, Any]:
    if rows < 30:
        # Too few rows to hold out a test split: leave-one-out on everything.
        return {"method": "kfold", "folds": "loo", "test_size": 0}
    return {"method": "kfold", "folds": 5, "test_size": 0.2}


def _sample(file: Path, rows: int = 10_000) -> Any:
    import pandas as pd

    if not file.exists():
        raise ConfigError(
            f"data file {str(file)!r} does not exist",
            hint="pass --data with a path relative to the project folder",
        )
    try:
        suffix = file.suffix.lower()
        if suffix == ".parquet":
            return pd.read_parquet(file).head(rows)
        if suffix in (".jsonl", ".json"):
            return pd.read_json(file, lines=True, nrows=rows)
        return pd.read_csv(file, nrows=rows)
    except Exception as exc:  # any reader error: name the file and the problem
        raise ConfigError(
            f"cannot read {str(file)!r}: {type(exc).__name__}: {exc}",
            hint="give a CSV, Parquet or JSON-lines file",
        ) from None
