"""The project file, ``loopml.yaml``: a pydantic model, its JSON schema, and readable errors.

A small project::

    name: quickstart
    data:
      source: {type: file, path: data.csv}
    target: y
    task: regression
    split: {method: kfold, folds: loo, test_size: 0}
    candidates: [linear_regression, ridge]
    metric: rmse
    gates: {r2: 0.99}            # bare numbers: a minimum for r2, a maximum for rmse...
    model: {name: quickstart}

:func:`load_project` reads the file and raises one :class:`ConfigError` that names, for each
problem, the key, its line in the file, the bad value and the valid options::

    loopml.yaml:7: split.method has value 'kfolds'; valid options: 'holdout', 'kfold', 'time'

The ``serving`` section is a :class:`~loopml.train.serving_spec.ServingSpec` (what
``loopml serve`` serves from the project folder). The ``monitoring`` and ``loop`` sections
belong to later stages of the loop; they are kept here as mappings and validated by the layers
that read them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from loopml.data.cleaning_spec import CleaningSpec
from loopml.data.features import FeatureSpec
from loopml.data.sources import SourceSpec
from loopml.errors import ConfigError, NotFoundError
from loopml.train.candidates import CANDIDATES, TASKS, get_candidate
from loopml.train.metrics import METRICS, metric_info, metrics_for_task
from loopml.train.search_space import ParamSpace
from loopml.train.serving_spec import ServingSpec
from loopml.train.yaml_lines import LocatedYAML, load_yaml

__all__ = [
    "PROJECT_FILE",
    "CandidateSpec",
    "DataSpec",
    "EvaluationSpec",
    "GateSpec",
    "ModelSpec",
    "Project",
    "ProjectSpec",
    "SearchSpec",
    "ServingSpec",
    "SplitSpec",
    "load_project",
    "parse_project",
    "project_schema",
]

PROJECT_FILE = "loopml.yaml"

Task = Literal["regression", "binary", "multiclass"]
DEFAULT_METRIC = {"regression": "rmse", "binary": "roc_auc", "multiclass": "f1"}
DEFAULT_CANDIDATES = {
    "regression": ["linear_regression", "ridge", "random_forest", "hist_gradient_boosting"],
    "binary": ["logistic_regression", "random_forest", "hist_gradient_boosting"],
    "multiclass": ["logistic_regression", "random_forest", "hist_gradient_boosting"],
}


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Spec):
    """Where the training data comes from: a source to ingest, or a stored dataset version."""

    source: SourceSpec | None = Field(
        default=None, description="ingest from this source (see loopml.data.sources)"
    )
    dataset: str | None = Field(
        default=None,
        description="dataset name to ingest into (default: the project name), or with no "
        "source a stored version to train on: NAME@VERSION or NAME@latest",
    )
    contract: str | None = Field(
        default=None, description="path of a contract YAML (relative to the project folder)"
    )
    clean: CleaningSpec | None = Field(default=None, description="cleaning recipe")


class SplitSpec(_Spec):
    """The held-out test split and the validation scheme of the search (see loopml.train.splits)."""

    method: Literal["holdout", "kfold", "time"] = "kfold"
    test_size: float = Field(default=0.2, ge=0.0, lt=1.0, description="fraction held out for test")
    folds: int | Literal["loo"] = Field(
        default=5, description="k for kfold/time (>= 2), or 'loo' for leave-one-out"
    )
    valid_size: float = Field(
        default=0.2, gt=0.0, lt=1.0, description="holdout: validation fraction"
    )
    time_column: str | None = Field(default=None, description="time: the column to order by")
    stratify: bool = True
    shuffle: bool = True

    @field_validator("folds")
    @classmethod
    def _at_least_two(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 2:
            raise ValueError("folds must be at least 2, or 'loo'")
        return value


class SearchSpec(_Spec):
    """The hyperparameter search budget (Optuna TPE)."""

    trials: int = Field(default=20, ge=1, description="number of trials in total")
    timeout: float | None = Field(
        default=None, gt=0, description="stop starting trials after this many seconds"
    )
    n_jobs: int = Field(default=1, ge=1, description="trials run in parallel processes")
    seed: int = Field(default=0, ge=0)
    pruning: bool = Field(
        default=True, description="stop trials whose fold scores lag (median rule)"
    )


class CandidateSpec(_Spec):
    """A candidate model: its name, fixed params, and search space (omitted: the default)."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)
    space: dict[str, ParamSpace] | None = None

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CANDIDATES:
            raise ValueError(f"unknown candidate; valid options: {', '.join(CANDIDATES)}")
        return value

    def search_space(self) -> dict[str, Any]:
        """This candidate's space: the one given, or its default minus the fixed params."""
        if self.space is not None:
            return dict(self.space)
        default = get_candidate(self.name).space
        return {k: v for k, v in default.items() if k not in self.params}


class GateSpec(_Spec):
    """A release gate on a test metric: ``min`` and/or ``max``."""

    min: float | None = None
    max: float | None = None

    def check(self, value: float) -> bool:
        """True when ``value`` is within the gate (NaN never is)."""
        if value != value:  # NaN
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        return " and ".join(parts)


class ModelSpec(_Spec):
    """The registered model the project produces."""

    name: str | None = Field(
        default=None, description="registered model name (default: project name)"
    )
    description: str | None = None
    allow_pickle: bool = Field(
        default=False,
        description="also store a pickle, and let servers load it for versions without ONNX "
        "(recorded on each version as the tag loopml.allow_pickle=true; loading pickles runs "
        "code)",
    )
    tags: dict[str, str] = Field(default_factory=dict)


class EvaluationSpec(_Spec):
    """What to compute on the test split besides the scalar metrics."""

    slice_by: list[str] = Field(default_factory=list, description="categorical columns to slice by")
    plots: bool = True
    report: bool = True


class ProjectSpec(_Spec):
    """The whole ``loopml.yaml``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str | None = None
    experiment: str | None = Field(default=None, description="tracking experiment (default: name)")
    data: DataSpec
    features: list[FeatureSpec] | None = Field(
        default=None,
        description="feature transforms; omitted: numbers standardized, text one-hot encoded",
    )
    target: str = Field(min_length=1)
    task: Task
    positive_label: str | int | float | bool | None = Field(
        default=None, description="binary: the class that counts as positive (default: the second)"
    )
    split: SplitSpec = Field(default_factory=SplitSpec)
    candidates: list[CandidateSpec] | None = None
    search: SearchSpec = Field(default_factory=SearchSpec)
    metric: str | None = Field(default=None, description="primary metric (default by task)")
    gates: dict[str, GateSpec] = Field(default_factory=dict)
    model: ModelSpec = Field(default_factory=ModelSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    monitoring: dict[str, Any] | None = None
    loop: dict[str, Any] | None = None

    @field_validator("candidates", mode="before")
    @classmethod
    def _candidate_shorthand(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("gates", mode="before")
    @classmethod
    def _gate_shorthand(cls, value: Any) -> Any:
        # A bare number is the bound that makes sense for the metric: a floor for r2 or
        # accuracy, a ceiling for rmse or log loss.
        if not isinstance(value, dict):
            return value
        out = {}
        for key, bound in value.items():
            if isinstance(bound, int | float) and not isinstance(bound, bool) and key in METRICS:
                bound = {"min" if METRICS[key].greater_is_better else "max": bound}
            out[key] = bound
        return out

    # -- resolved values ----------------------------------------------------------------------

    @property
    def primary_metric(self) -> str:
        return self.metric or DEFAULT_METRIC[self.task]

    @property
    def model_name(self) -> str:
        return self.model.name or self.name

    @property
    def experiment_name(self) -> str:
        return self.experiment or self.name

    @property
    def dataset_name(self) -> str:
        if self.data.dataset:
            return self.data.dataset.split("@", 1)[0]
        return self.name

    def candidate_specs(self) -> list[CandidateSpec]:
        if self.candidates is not None:
            return list(self.candidates)
        return [CandidateSpec(name=n) for n in DEFAULT_CANDIDATES[self.task]]


@dataclass(frozen=True)
class Project:
    """A validated project: its spec and the folder relative paths are resolved against."""

    spec: ProjectSpec
    root: Path
    file: Path | None = None

    def path(self, relative: str) -> Path:
        """``relative`` resolved against the project folder (absolute paths unchanged)."""
        candidate = Path(relative).expanduser()
        return candidate if candidate.is_absolute() else (self.root / candidate)


# --- loading ---------------------------------------------------------------------------------


def load_project(path: str | Path = ".") -> Project:
    """Read ``path`` (a project folder or its ``loopml.yaml``) and validate it."""
    target = Path(path).expanduser()
    file = target / PROJECT_FILE if target.is_dir() else target
    if not file.exists():
        raise NotFoundError(
            f"no project file at {str(file)!r}",
            hint="run `loopml init` to create one, or pass the project folder",
        )
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read project file {str(file)!r}: {exc}") from None
    spec = parse_project(text, filename=str(file))
    return Project(spec=spec, root=file.parent.absolute(), file=file.absolute())


def parse_project(text: str, *, filename: str = PROJECT_FILE) -> ProjectSpec:
    """Validate YAML ``text`` as a project; :class:`ConfigError` lists every problem by line."""
    located = load_yaml(text, filename=filename)
    if not isinstance(located.data, dict):
        raise ConfigError(
            f"{filename}: a project file must be a mapping of keys (name, data, target, ...), "
            f"got {type(located.data).__name__}",
            hint="run `loopml init` for a starting point, or `loopml schema` for every key",
        )
    try:
        spec = ProjectSpec.model_validate(located.data)
    except ValidationError as exc:
        raise _config_error(located, [_from_pydantic(e) for e in exc.errors()]) from None
    problems = semantic_problems(spec)
    if problems:
        raise _config_error(located, problems)
    return spec


def semantic_problems(spec: ProjectSpec) -> list[tuple[tuple[Any, ...], Any, str]]:
    """Checks that need more than one key: (location, bad value, message with the options)."""
    problems: list[tuple[tuple[Any, ...], Any, str]] = []
    task = spec.task
    for i, candidate in enumerate(spec.candidate_specs()):
        tasks = get_candidate(candidate.name).tasks
        if task not in tasks:
            usable = [n for n, c in CANDIDATES.items() if task in c.tasks]
            problems.append(
                (
                    ("candidates", i, "name"),
                    candidate.name,
                    f"does not handle task {task!r}; valid options: {', '.join(usable)}",
                )
            )
    if spec.metric is not None and (
        spec.metric not in METRICS or task not in METRICS[spec.metric].tasks
    ):
        problems.append(
            (
                ("metric",),
                spec.metric,
                f"valid options for {task}: {', '.join(metrics_for_task(task))}",
            )
        )
    for name in spec.gates:
        try:
            metric_info(name, task)
        except ConfigError:
            problems.append(
                (
                    ("gates", name),
                    name,
                    f"is not a metric of {task}; "
                    f"valid options: {', '.join(metrics_for_task(task))}",
                )
            )
    if spec.split.method == "time" and not spec.split.time_column:
        problems.append(
            (("split", "method"), "time", "needs split.time_column (the column to order by)")
        )
    if spec.split.method == "time" and spec.split.folds == "loo":
        problems.append(
            (("split", "folds"), "loo", "leave-one-out cannot keep time order; give a number")
        )
    if spec.positive_label is not None and task != "binary":
        problems.append((("positive_label",), spec.positive_label, "only applies to task: binary"))
    if spec.data.source is None and not spec.data.dataset:
        problems.append((("data",), None, "needs a source to ingest, or dataset: NAME@VERSION"))
    if spec.features is not None and spec.target in {f.column for f in spec.features}:
        problems.append((("features",), spec.target, "lists the target column as a feature"))
    return problems


def _from_pydantic(error: Any) -> tuple[tuple[Any, ...], Any, str]:
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    ctx = error.get("ctx") or {}
    message = error.get("msg", "is not valid")
    if kind == "literal_error" and "expected" in ctx:
        message = f"valid options: {ctx['expected']}"
    elif kind == "union_tag_invalid":
        message = (
            f"valid options for {ctx.get('discriminator', 'type')}: {ctx.get('expected_tags')}"
        )
    elif kind == "union_tag_not_found":
        message = f"needs {ctx.get('discriminator', 'type')!s} (e.g. type: file)"
    elif kind == "extra_forbidden":
        valid = _fields_at(loc[:-1])
        message = "is not a known key" + (f"; valid keys: {', '.join(valid)}" if valid else "")
    elif kind == "missing":
        message = "is required"
    elif message.startswith("Value error, "):
        message = message.removeprefix("Value error, ")
    value = error.get("input") if kind not in ("missing",) else None
    return loc, value, message


def _config_error(
    located: LocatedYAML, problems: list[tuple[tuple[Any, ...], Any, str]]
) -> ConfigError:
    lines = []
    for loc, value, message in problems:
        line = located.line_of(loc)
        where = f"{located.filename}:{line}" if line else located.filename
        key = _dotted(loc, located)
        shown = "" if value is None or isinstance(value, dict | list) else f" has value {value!r};"
        lines.append(f"{where}: {key}{shown} {message}".replace(";  ", "; "))
    count = f"{len(lines)} problems" if len(lines) > 1 else "a problem"
    text = "\n".join(lines)
    return ConfigError(
        f"{located.filename} has {count}:\n{text}" if len(lines) > 1 else text,
        hint="`loopml schema` prints every key with its type and default",
    )


def _dotted(loc: tuple[Any, ...], located: LocatedYAML) -> str:
    """``split.folds`` / ``candidates[1].space.alpha``, leaving out pydantic's union tags."""
    parts: list[str] = []
    path: tuple[Any, ...] = ()
    for part in loc:
        candidate = (*path, part)
        if candidate not in located.lines and isinstance(part, str) and _is_tag(part):
            continue
        path = candidate
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def _is_tag(part: str) -> bool:
    return part in {"file", "sql", "http", "log", "int", "float", "categorical"} or "[" in part


def _fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The keys a mapping at ``loc`` may have, found by walking the models' annotations."""
    current: Any = ProjectSpec
    for part in loc:
        current = _unwrap(current, part)
        if current is None:
            return []
    current = _unwrap(current, None)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation: Any, part: Any) -> Any:
    """Step from ``annotation`` into ``part`` (a key, an index, or None to just unwrap)."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if origin is not None and type(None) in get_args(annotation):  # X | None
            members = [a for a in get_args(annotation) if a is not type(None)]
            annotation = members[0] if len(members) == 1 else annotation
            if len(members) == 1:
                continue
        break
    if part is None:
        return annotation
    origin = get_origin(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(part) if isinstance(part, str) else None
        return field.annotation if field is not None else None
    if origin is list and isinstance(part, int):
        return get_args(annotation)[0]
    if origin is dict and isinstance(part, str):
        return get_args(annotation)[1]
    for member in get_args(annotation):  # a discriminated union: the loc part is the tag
        if isinstance(member, type) and issubclass(member, BaseModel):
            tag = member.model_fields.get("type")
            if tag is not None and tag.default == part:
                return member
    return None


def project_schema() -> dict[str, Any]:
    """The JSON schema of ``loopml.yaml`` (draft 2020-12), for editors and ``loopml schema``."""
    schema = ProjectSpec.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "loopml project (loopml.yaml)"
    schema.setdefault("properties", {}).setdefault("task", {})["enum"] = list(TASKS)
    return schema


def schema_json(indent: int = 2) -> str:
    """:func:`project_schema` as text."""
    return json.dumps(project_schema(), indent=indent)
