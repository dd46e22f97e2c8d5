"""``loopml run``: ingest → validate/clean → train → evaluate → package → register.

Every stage is a method of :class:`ProjectRun`, so a notebook can run them one at a time::

    from loopml.pipeline import ProjectRun
    from loopml.train import load_project

    with ProjectRun(load_project("examples/quickstart")) as run:
        data = run.ingest()                        # a dataset version (reused if unchanged)
        trained = run.train(data)                  # search + refit, one tracked parent run
        evaluation = run.evaluate(data, trained)   # test metrics, plots, HTML report
        packaged = run.package(data, trained, evaluation)
        registration = run.register(data, trained, evaluation, packaged)

and :func:`run_project` does all of it and returns a :class:`ProjectResult`. Progress is
reported through a callback ``(event, payload)`` (see :data:`loopml.train.search.Progress`);
the CLI turns it into a live display. The parent run ends FINISHED when the ``with`` block
ends normally and FAILED (with the error) when a stage raises.

Packaging is the layer above training; this module calls it (lazily) because it is the
orchestrator of the whole stage sequence, like ``loopml.loop`` is of the whole loop.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import ConfigError, LoopMLError
from loopml.train.project import Project, load_project
from loopml.train.search import Progress, SearchResult

if TYPE_CHECKING:
    import pandas as pd

    from loopml.config import Settings
    from loopml.registry import ModelRegistry
    from loopml.tracking.client import Client
    from loopml.train.crossval import TrialOutcome
    from loopml.train.dataset import TrainingData
    from loopml.train.evaluation import Evaluation
    from loopml.train.selection import Comparison, GateResult, Registration
    from loopml.train.splits import Split

__all__ = [
    "DataResult",
    "EvaluationResult",
    "ProjectResult",
    "ProjectRun",
    "TrainResult",
    "run_project",
]


# --- stage results ---------------------------------------------------------------------------


@dataclass
class DataResult:
    """The dataset version a run trains on."""

    ref: str
    dataset_version_id: int
    content_hash: str
    contract_id: int | None
    frame: pd.DataFrame
    reused: bool
    rows_in: int | None = None
    quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "dataset_version_id": self.dataset_version_id,
            "rows": len(self.frame),
            "rows_in": self.rows_in,
            "quarantined": self.quarantined,
            "reasons": self.reasons,
            "reused": self.reused,
            "content_hash": self.content_hash,
        }


@dataclass
class TrainResult:
    """The refitted winner and how it was found."""

    run_id: str
    data: TrainingData
    split: Split
    search: SearchResult | None
    best: TrialOutcome
    model: Any
    transformer: Any
    seconds: float


@dataclass
class EvaluationResult:
    evaluation: Evaluation
    gates: list[GateResult]
    comparison: Comparison | None
    importance: dict[str, Any]
    report_path: Path | None

    @property
    def gates_passed(self) -> bool:
        return all(g.passed for g in self.gates)


@dataclass
class ProjectResult:
    """Everything ``loopml run`` reports at the end."""

    project: str
    run_id: str
    experiment: str
    dataset: dict[str, Any]
    best: dict[str, Any]
    metrics: dict[str, float]
    evaluated_on: str
    gates: list[dict[str, Any]]
    gates_passed: bool
    comparison: dict[str, Any] | None
    model: dict[str, Any]
    report: str | None
    seconds: dict[str, float]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


# --- the run ---------------------------------------------------------------------------------


class ProjectRun:
    """One execution of a project: a parent tracking run plus the stages that fill it."""

    def __init__(
        self,
        project: Project,
        *,
        settings: Settings | None = None,
        progress: Progress | None = None,
        run_name: str | None = None,
    ) -> None:
        from loopml.config import Settings

        self.project = project
        self.spec = project.spec
        self.settings = settings or Settings.from_env()
        self.progress = progress
        self.run_name = run_name
        self.seconds: dict[str, float] = {}
        self.notes: list[str] = []
        self._client: Client | None = None
        self._registry: ModelRegistry | None = None
        self._run_id: str | None = None
        self._experiment_id: str | None = None

    # -- wiring -------------------------------------------------------------------------------

    @property
    def client(self) -> Client:
        if self._client is None:
            from loopml.tracking.client import Client

            self._client = Client(self.settings)
        return self._client

    @property
    def registry(self) -> ModelRegistry:
        if self._registry is None:
            from loopml.registry import ModelRegistry

            self._registry = ModelRegistry(self.client.database, self.client.artifacts)
        return self._registry

    @property
    def run_id(self) -> str:
        """The parent run, created on first use."""
        if self._run_id is None:
            self._experiment_id = self.client.store.get_or_create_experiment(
                self.spec.experiment_name
            )
            run = self.client.create_run(
                self._experiment_id,
                run_name=self.run_name or f"{self.spec.name}-{time.strftime('%Y%m%d-%H%M%S')}",
                tags={
                    "loopml.kind": "project",
                    "loopml.project": self.spec.name,
                    "loopml.task": self.spec.task,
                },
            )
            self._run_id = run.info.run_id
            self._emit("run", {"run_id": self._run_id, "experiment": self.spec.experiment_name})
        return self._run_id

    def __enter__(self) -> ProjectRun:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        self.close(failed=exc)

    def close(self, failed: BaseException | None = None) -> None:
        """End the parent run (FAILED with the error if ``failed``) and release the client."""
        from loopml.tracking.entities import RunStatus

        if self._run_id is not None:
            if failed is not None:
                text = failed.message if isinstance(failed, LoopMLError) else str(failed)
                self.client.set_tag(
                    self._run_id, "loopml.error", f"{type(failed).__name__}: {text}"
                )
                status = (
                    RunStatus.KILLED if isinstance(failed, KeyboardInterrupt) else RunStatus.FAILED
                )
            else:
                status = RunStatus.FINISHED
            self.client.set_terminated(self._run_id, status)
        if self._client is not None:
            self._client.close()

    def _emit(self, event: str, payload: Mapping[str, Any]) -> None:
        if self.progress is not None:
            self.progress(event, payload)

    def _stage(self, name: str) -> _Stage:
        return _Stage(self, name)

    # -- 1. data -----------------------------------------------------------------------------

    def ingest(self) -> DataResult:
        """Ingest the project's source (validate, clean, version), or load its dataset version.

        Identical content does not make a new version: the latest one is reused.
        """
        from loopml.data.versions import from_settings

        with self._stage("ingest"):
            run_id = self.run_id  # opened first, so that a failed ingestion is a FAILED run
            store = from_settings(self.settings)
            data = self.spec.data
            if data.source is None:
                info = store.get_version(_with_version(data.dataset or self.spec.name))
                frame = store.read(info.ref, as_="pandas")
                result = DataResult(
                    info.ref,
                    info.id,
                    info.content_hash,
                    info.contract_id,
                    frame,
                    reused=True,
                    rows_in=info.row_count,
                )
            else:
                contract = str(self.project.path(data.contract)) if data.contract else None

                def on_progress(stage: str, rows: int) -> None:
                    self._emit("ingest_progress", {"stage": stage, "rows": rows})

                ingested = store.ingest(
                    _resolve_source(data.source, self.project),
                    self.spec.dataset_name,
                    clean=data.clean,
                    contract=contract,
                    progress=on_progress,
                    run_id=run_id,
                )
                info = store.get_version(ingested.ref)
                frame = store.read(ingested.ref, as_="pandas")
                result = DataResult(
                    ingested.ref,
                    ingested.dataset_version_id,
                    info.content_hash,
                    info.contract_id,
                    frame,
                    reused=ingested.reused,
                    rows_in=ingested.rows_in,
                    quarantined=ingested.quarantined,
                    reasons=dict(ingested.reasons),
                )
            self._emit("dataset", result.summary())
            return result

    # -- 2. train ------------------------------------------------------------------------------

    def train(self, data: DataResult) -> TrainResult:
        """Split, search the candidates (one child run per trial), and refit the winner."""
        from loopml.data.features import build_column_transformer
        from loopml.train.dataset import prepare
        from loopml.train.splits import make_split

        spec = self.spec
        with self._stage("train"):
            started = time.perf_counter()
            run_id = self.run_id
            training = prepare(spec, data.frame)
            split = make_split(
                spec.split,
                training.frame,
                target=spec.target,
                task=spec.task,
                seed=spec.search.seed,
            )
            transformer = build_column_transformer(training.features)
            self.client.log_inputs(run_id, [data.dataset_version_id], "training")
            self.client.log_params(run_id, _run_params(spec, data, split))
            self.client.log_dict(run_id, spec.model_dump(mode="json"), "project/loopml.yaml")
            self.client.log_dict(run_id, split.describe(), "project/split.json")
            self.notes.extend(split.notes)
            search = None
            configurations = _configurations(spec)
            if configurations == 1 and len(split.test):
                best = _single(spec)
                self.notes.append(
                    "one configuration and a test split: nothing to choose, so no "
                    "validation folds were fitted"
                )
            else:
                search = self._search(training, split, transformer)
                best = search.best
            model = self._refit(training, split, transformer, best)
            self._log_search(search, best)
            return TrainResult(
                run_id,
                training,
                split,
                search,
                best,
                model,
                transformer,
                time.perf_counter() - started,
            )

    def _search(self, training: TrainingData, split: Split, transformer: Any) -> SearchResult:
        from loopml.train.search import run_search

        spec = self.spec
        X = training.X
        y = training.y
        result = run_search(
            X=X,
            y=y,
            folds=split.folds,
            candidates=spec.candidate_specs(),
            search=spec.search,
            task=spec.task,
            primary=spec.primary_metric,
            transformer=transformer,
            classes=training.classes,
            positive_label=spec.positive_label,
            keep_oof=len(split.test) == 0,
            client=self.client,
            experiment_id=self._experiment_id,
            parent_run_id=self.run_id,
            progress=self.progress,
        )
        self.notes.extend(result.notes)
        return result

    def _refit(self, training: TrainingData, split: Split, transformer: Any, best: Any) -> Any:
        from loopml.train.candidates import build_pipeline

        self._emit("refit", {"candidate": best.candidate, "params": best.params})
        model = build_pipeline(
            best.candidate,
            self.spec.task,
            best.params,
            transformer=transformer,
            seed=self.spec.search.seed,
        )
        rows = training.frame.iloc[split.train]
        started = time.perf_counter()
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.fit(rows.drop(columns=[training.target]), rows[training.target].to_numpy())
        self.seconds["refit"] = time.perf_counter() - started
        for item in {f"{w.category.__name__}: {w.message}" for w in caught}:
            self.notes.append(f"refit warning: {item}")
        return model

    def _log_search(self, search: SearchResult | None, best: Any) -> None:
        run_id = self.run_id
        params = {f"best.{k}": v for k, v in best.params.items()}
        self.client.log_params(run_id, {"best.candidate": best.candidate, **params})
        metrics: dict[str, float] = {"refit_seconds": self.seconds.get("refit", 0.0)}
        if search is not None:
            metrics.update({f"cv_{k}": v for k, v in best.metrics.items()})
            metrics["search_seconds"] = search.seconds
            metrics["trials"] = float(len(search.trials))
            self.client.log_dict(run_id, search.leaderboard(), "search/leaderboard.json")
        self.client.log_metrics(run_id, metrics)

    # -- 3. evaluate ---------------------------------------------------------------------------

    def evaluate(self, data: DataResult, trained: TrainResult) -> EvaluationResult:
        """Score on the test split, compare with the champion, check gates, write the report."""
        from loopml.train.evaluation import evaluate_model, evaluate_predictions
        from loopml.train.importance import feature_importance
        from loopml.train.selection import check_gates

        spec = self.spec
        with self._stage("evaluate"):
            training, split = trained.data, trained.split
            if len(split.test):
                rows = training.frame.iloc[split.test]
                evaluation = evaluate_model(
                    trained.model,
                    rows,
                    target=spec.target,
                    task=spec.task,
                    classes=training.classes,
                    positive_label=spec.positive_label,
                    slice_by=spec.evaluation.slice_by,
                )
            else:
                rows = training.frame.iloc[split.train]
                best = trained.best
                if best.oof_pred is None:
                    raise ConfigError(
                        "split.test_size is 0 but the search kept no out-of-fold predictions",
                        hint="set split.test_size above 0",
                    )
                index = np.concatenate([valid for _, valid in split.folds])
                evaluation = evaluate_predictions(
                    spec.task,
                    training.y[index],
                    best.oof_pred[index],
                    None if best.oof_proba is None else best.oof_proba[index],
                    classes=training.classes,
                    positive_label=spec.positive_label,
                    slice_frame=training.frame.iloc[index],
                    slice_by=spec.evaluation.slice_by,
                    source="out-of-fold predictions (no test split)",
                )
                rows = training.frame.iloc[index]
            comparison = self._compare_with_champion(rows, evaluation)
            gates = check_gates(spec.gates, evaluation.metrics)
            importance = (
                feature_importance(trained.model, rows, target=spec.target, seed=spec.search.seed)
                if len(rows)
                else {}
            )
            self._log_evaluation(evaluation, gates, comparison, importance)
            report_path = self._report(data, trained, evaluation, gates, comparison, importance)
            return EvaluationResult(evaluation, gates, comparison, importance, report_path)

    def _compare_with_champion(
        self, rows: pd.DataFrame, evaluation: Evaluation
    ) -> Comparison | None:
        from loopml.pipeline.champion import champion_predictions
        from loopml.train.evaluation import evaluate_predictions
        from loopml.train.selection import compare, current_champion

        spec = self.spec
        champion = current_champion(self.registry, spec.model_name)
        if champion is None:
            return None
        predicted = champion_predictions(
            self.registry,
            champion,
            rows.drop(columns=[spec.target]),
            task=spec.task,
            classes=evaluation.classes,
        )
        if isinstance(predicted, str):
            self.notes.append(f"champion v{champion.version} not compared: {predicted}")
            return None
        pred, proba = predicted
        theirs = evaluate_predictions(
            spec.task,
            evaluation.y_true,
            pred,
            proba,
            classes=evaluation.classes,
            positive_label=spec.positive_label,
        )
        return compare(
            evaluation.metrics,
            theirs.metrics,
            metric=spec.primary_metric,
            champion_version=champion.version,
        )

    def _log_evaluation(
        self,
        evaluation: Evaluation,
        gates: list[GateResult],
        comparison: Comparison | None,
        importance: dict[str, Any],
    ) -> None:
        run_id = self.run_id
        self.client.log_metrics(run_id, {f"test_{k}": v for k, v in evaluation.metrics.items()})
        self.client.log_dict(run_id, evaluation.summary(), "evaluation/evaluation.json")
        self.client.log_dict(run_id, [g.to_dict() for g in gates], "evaluation/gates.json")
        self.client.log_dict(run_id, importance, "evaluation/feature_importance.json")
        if comparison is not None:
            self.client.log_dict(run_id, comparison.to_dict(), "evaluation/champion.json")
        self.client.set_tags(
            run_id,
            {
                "loopml.gates": "passed" if all(g.passed for g in gates) else "failed",
                "loopml.evaluated_on": evaluation.source,
            },
        )

    def _report(
        self,
        data: DataResult,
        trained: TrainResult,
        evaluation: Evaluation,
        gates: list[GateResult],
        comparison: Comparison | None,
        importance: dict[str, Any],
    ) -> Path | None:
        import io

        from loopml.train.plots import evaluation_plots
        from loopml.train.report import render_report

        spec = self.spec
        if not (spec.evaluation.plots or spec.evaluation.report):
            return None
        pngs: dict[str, bytes] = {}
        if spec.evaluation.plots:
            for name, figure in evaluation_plots(evaluation, importance).items():
                buffer = io.BytesIO()
                figure.savefig(buffer, format="png")
                pngs[name] = buffer.getvalue()
                self.client.log_bytes(self.run_id, pngs[name], f"plots/{name}")
        if not spec.evaluation.report:
            return None
        best = trained.best
        html = render_report(
            title=f"{spec.name}: {best.candidate}",
            summary={
                "run": self.run_id,
                "dataset": data.ref,
                "task": spec.task,
                "target": spec.target,
                "primary metric": spec.primary_metric,
                "candidate": best.candidate,
                "params": ", ".join(f"{k}={v}" for k, v in best.params.items()) or "defaults",
                "training rows": len(trained.split.train),
                "evaluation rows": evaluation.rows,
            },
            metrics=evaluation.metrics,
            evaluation_source=evaluation.source,
            gates=[g.to_dict() for g in gates],
            champion=None
            if comparison is None
            else {"version": comparison.champion_version, "metrics": comparison.champion_metrics},
            leaderboard=trained.search.leaderboard() if trained.search else [],
            slices=evaluation.slices,
            confusion=evaluation.confusion,
            classes=evaluation.classes,
            figures=pngs,
            lineage=self._lineage(data, trained, evaluation),
            notes=self.notes,
        )
        self.client.log_text(self.run_id, html, "report.html")
        return self._local_copy(html)

    def _local_copy(self, html: str) -> Path | None:
        """Also write the report under ``LOOPML_HOME/reports`` so a browser can open it."""
        try:
            folder = Path(self.settings.home).absolute() / "reports"
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{self.run_id}.html"
            path.write_text(html, encoding="utf-8")
            return path
        except OSError:
            return None

    # -- 4. package ----------------------------------------------------------------------------

    def package(self, data: DataResult, trained: TrainResult, evaluation: EvaluationResult) -> Any:
        """Export the model (ONNX + parity check) and log it under the run's ``model/``."""
        from loopml.pipeline.champion import package

        with self._stage("package"):
            rows = trained.data.frame.iloc[
                trained.split.test if len(trained.split.test) else trained.split.train
            ]
            return package(
                trained.model,
                rows.drop(columns=[self.spec.target]),
                task=self.spec.task,
                run_id=self.run_id,
                metrics=evaluation.evaluation.metrics,
                lineage=self._lineage(data, trained, evaluation.evaluation),
                allow_pickle=self.spec.model.allow_pickle,
                client=self.client,
            )

    # -- 5. register ---------------------------------------------------------------------------

    def register(
        self, data: DataResult, trained: TrainResult, evaluation: EvaluationResult, packaged: Any
    ) -> Registration:
        """A new registered version with lineage; ``challenger``, and ``champion`` if earned."""
        from loopml.train.selection import assign_aliases, current_champion

        spec = self.spec
        with self._stage("register"):
            before = current_champion(self.registry, spec.model_name)
            signature = getattr(packaged, "signature", None)
            if signature is not None and hasattr(signature, "to_dict"):
                signature = signature.to_dict()
            metrics = dict(evaluation.evaluation.metrics)
            version = self.registry.register_version(
                spec.model_name,
                self.run_id,
                getattr(packaged, "artifact_path", "model"),
                signature=signature,
                metrics=metrics,
                description=spec.model.description or spec.description,
                lineage=self._lineage(data, trained, evaluation.evaluation),
                tags={
                    **spec.model.tags,
                    "loopml.gates": "passed" if evaluation.gates_passed else "failed",
                    "loopml.candidate": trained.best.candidate,
                    **_pickle_opt_in(spec.model.allow_pickle),
                },
            )
            registration = assign_aliases(
                self.registry,
                spec.model_name,
                version.version,
                gates_passed=evaluation.gates_passed,
                champion_before=None if before is None else before.version,
            )
            self.client.set_tags(
                self.run_id,
                {
                    "loopml.model": f"{spec.model_name}:{version.version}",
                    "loopml.aliases": ",".join(registration.aliases),
                },
            )
            self._emit("registered", registration.to_dict())
            return registration

    # -- lineage -------------------------------------------------------------------------------

    def _lineage(
        self, data: DataResult, trained: TrainResult, evaluation: Evaluation
    ) -> dict[str, Any]:
        from loopml.tracking import environment as env

        spec = self.spec
        commit, dirty = env.git_state(str(self.project.root))
        project_hash = (
            hashlib.sha256(self.project.file.read_bytes()).hexdigest()
            if self.project.file is not None and self.project.file.exists()
            else None
        )
        return {
            "project": spec.name,
            "dataset": {
                "ref": data.ref,
                "dataset_version_id": data.dataset_version_id,
                "content_hash": data.content_hash,
                "contract_id": data.contract_id,
            },
            "features": [f.model_dump(mode="json") for f in trained.data.features],
            "target": spec.target,
            "task": spec.task,
            "candidate": trained.best.candidate,
            "params": trained.best.params,
            "metrics": evaluation.metrics,
            "evaluated_on": evaluation.source,
            "split": trained.split.describe(),
            "search": {
                "trials": len(trained.search.trials) if trained.search else 0,
                "seed": spec.search.seed,
                "primary_metric": spec.primary_metric,
            },
            "code": {"git_commit": commit, "git_dirty": dirty, "project_file_sha256": project_hash},
            "environment": env.environment(),
        }


class _Stage:
    """Times a stage and reports its start and end to the progress callback."""

    def __init__(self, run: ProjectRun, name: str) -> None:
        self.run = run
        self.name = name
        self.started = 0.0

    def __enter__(self) -> _Stage:
        self.started = time.perf_counter()
        self.run._emit("stage_start", {"stage": self.name})
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        seconds = time.perf_counter() - self.started
        self.run.seconds[self.name] = seconds
        self.run._emit("stage_end", {"stage": self.name, "seconds": seconds, "ok": exc is None})


# --- the whole thing -------------------------------------------------------------------------


def run_project(
    path: str | Path | Project = ".",
    *,
    settings: Settings | None = None,
    progress: Progress | None = None,
    trials: int | None = None,
    timeout: float | None = None,
    n_jobs: int | None = None,
    skip_ingest: bool = False,
) -> ProjectResult:
    """Run a project end to end and return its summary.

    ``trials``/``timeout``/``n_jobs`` override ``search`` in the project file.
    ``skip_ingest`` trains on the stored dataset version (``data.dataset`` or the latest
    version of the project's dataset) instead of ingesting the source again.
    """
    project = path if isinstance(path, Project) else load_project(path)
    project = _override(
        project, trials=trials, timeout=timeout, n_jobs=n_jobs, skip_ingest=skip_ingest
    )
    with ProjectRun(project, settings=settings, progress=progress) as run:
        data = run.ingest()
        trained = run.train(data)
        evaluated = run.evaluate(data, trained)
        packaged = run.package(data, trained, evaluated)
        registration = run.register(data, trained, evaluated, packaged)
        best = trained.best
        return ProjectResult(
            project=project.spec.name,
            run_id=run.run_id,
            experiment=project.spec.experiment_name,
            dataset=data.summary(),
            best={
                "candidate": best.candidate,
                "params": best.params,
                "trial": best.number,
                "cv": best.metrics,
                "trials": len(trained.search.trials) if trained.search else 0,
            },
            metrics=evaluated.evaluation.metrics,
            evaluated_on=evaluated.evaluation.source,
            gates=[g.to_dict() for g in evaluated.gates],
            gates_passed=evaluated.gates_passed,
            comparison=None
            if evaluated.comparison is None
            else {**evaluated.comparison.to_dict(), "sentence": evaluated.comparison.sentence()},
            model={
                "name": registration.name,
                "version": registration.version,
                "aliases": registration.aliases,
                "reason": registration.reason,
                "format": getattr(packaged, "format", None),
            },
            report=None if evaluated.report_path is None else str(evaluated.report_path),
            seconds=dict(run.seconds),
            notes=list(dict.fromkeys(run.notes)),
        )


# --- helpers ---------------------------------------------------------------------------------


def _pickle_opt_in(allow_pickle: bool) -> dict[str, str]:
    """The version tag that lets servers load this version's pickle, when the project opts in.

    Recorded on the version (not read from the project at serving time) so that the consent
    travels with the model to whichever server loads it.
    """
    from loopml.package.bundle import ALLOW_PICKLE_TAG

    return {ALLOW_PICKLE_TAG: "true"} if allow_pickle else {}


def _override(
    project: Project,
    *,
    trials: int | None,
    timeout: float | None,
    n_jobs: int | None,
    skip_ingest: bool,
) -> Project:
    spec = project.spec
    search_updates = {
        k: v
        for k, v in {"trials": trials, "timeout": timeout, "n_jobs": n_jobs}.items()
        if v is not None
    }
    if search_updates:
        spec = spec.model_copy(update={"search": spec.search.model_copy(update=search_updates)})
    if skip_ingest and spec.data.source is not None:
        dataset = spec.data.dataset or spec.name
        spec = spec.model_copy(
            update={
                "data": spec.data.model_copy(
                    update={"source": None, "dataset": _with_version(dataset)}
                )
            }
        )
    return replace(project, spec=spec)


def _with_version(ref: str) -> str:
    return ref if "@" in ref else f"{ref}@latest"


def _resolve_source(source: Any, project: Project) -> Any:
    """Relative file paths in a project file are relative to the project folder."""
    path = getattr(source, "path", None)
    if not isinstance(path, str) or "://" in path or Path(path).expanduser().is_absolute():
        return source
    return source.model_copy(update={"path": str(project.path(path))})


def _configurations(spec: Any) -> float:
    total = 0.0
    for candidate in spec.candidate_specs():
        total += 1 if not candidate.search_space() else float("inf")
    return total


def _single(spec: Any) -> TrialOutcome:
    from loopml.train.crossval import TrialOutcome

    candidate = spec.candidate_specs()[0]
    return TrialOutcome(
        number=0, candidate=candidate.name, params=dict(candidate.params), state="COMPLETE"
    )


def _run_params(spec: Any, data: DataResult, split: Split) -> dict[str, Any]:
    return {
        "dataset": data.ref,
        "task": spec.task,
        "target": spec.target,
        "primary_metric": spec.primary_metric,
        "split.method": spec.split.method,
        "split.test_size": spec.split.test_size,
        "split.folds": spec.split.folds,
        "search.trials": spec.search.trials,
        "search.seed": spec.search.seed,
        "candidates": ",".join(c.name for c in spec.candidate_specs()),
        "train_rows": len(split.train),
        "test_rows": len(split.test),
    }
