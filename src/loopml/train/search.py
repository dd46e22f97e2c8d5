"""Hyperparameter search over every candidate at once, with Optuna's TPE sampler.

One study covers all candidates: the first parameter of a trial is ``candidate``, the rest
are that candidate's space (names ``<candidate>.<param>``), which TPE handles as a
conditional space. Each candidate is tried once first (enqueued), so none is starved.

Budget: ``search.trials`` and/or ``search.timeout`` (no new trial starts after it).
Parallelism: ``search.n_jobs`` worker processes. Trials are asked and told in rounds of
``max(4, n_jobs)`` in trial-number order, and pruning decisions only look at trials finished
before the round started, so **a search under a fixed seed and trial budget gives the same
trials and the same winner whatever the timing, and for any n_jobs up to 4** (a ``timeout``
budget is by nature not reproducible). The price: a round waits for its slowest trial, and
TPE learns from results a round late (its first 10 trials are random anyway).

Each trial is a child run of the search's parent run: params, CV metrics (``<m>_mean`` and
``<m>_std``), the primary metric per fold (``<primary>_fold``, by step), fit seconds,
prediction microseconds per row and model size in bytes. Trials are logged from the parent
process, so workers never touch the metadata store.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from loopml.errors import InvalidInputError
from loopml.train.crossval import TrialJob, TrialOutcome, cross_validate, install_data
from loopml.train.metrics import metric_info
from loopml.train.search_space import suggest

if TYPE_CHECKING:
    from loopml.tracking.client import Client
    from loopml.train.project import CandidateSpec, SearchSpec

__all__ = ["ROUND", "Progress", "SearchResult", "rank_trials", "run_search"]

# Trials are asked and told in rounds of max(ROUND, n_jobs): with up to ROUND workers the
# trials do not depend on the number of workers at all.
ROUND = 4

Progress = Callable[[str, Mapping[str, Any]], None]
"""A callback ``(event, payload)``: the CLI draws its live display from these."""


@dataclass
class SearchResult:
    """Every trial, best first by :func:`rank_trials`, and the run that holds them."""

    trials: list[TrialOutcome]
    ranking: list[TrialOutcome]
    direction: str
    seconds: float
    stopped_by: str
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> TrialOutcome:
        if not self.ranking:
            failures = "; ".join(
                f"#{t.number} {t.candidate}: {t.error}" for t in self.trials if t.error
            )[:1500]
            raise InvalidInputError(
                f"no trial of the search finished with a score ({len(self.trials)} tried)",
                hint=f"trial errors: {failures}" if failures else "check the data and candidates",
            )
        return self.ranking[0]

    def leaderboard(self) -> list[dict[str, Any]]:
        """One row per trial for tables and reports, in ranking order then the rest."""
        ranked = {t.number for t in self.ranking}
        rows = []
        for t in [*self.ranking, *(t for t in self.trials if t.number not in ranked)]:
            rows.append(
                {
                    "trial": t.number,
                    "candidate": t.candidate,
                    "state": t.state,
                    "value": t.value,
                    "fit_seconds": t.fit_seconds,
                    "predict_us_per_row": t.predict_us_per_row,
                    "model_bytes": t.model_bytes,
                    "params": t.params,
                    "error": t.error,
                    "run_id": t.run_id,
                }
            )
        return rows


def rank_trials(trials: list[TrialOutcome], direction: str) -> list[TrialOutcome]:
    """Completed trials, best first: by score, ties by prediction latency, then model size.

    Scores within a relative 1e-9 of each other count as a tie, so that float noise between
    two equally good models does not outweigh a model that predicts ten times faster.
    """
    done = [t for t in trials if t.state == "COMPLETE" and t.value is not None]
    done = [t for t in done if math.isfinite(t.value or 0.0)]
    sign = -1.0 if direction == "maximize" else 1.0
    done.sort(key=lambda t: (sign * float(t.value or 0.0), t.number))
    ranked: list[TrialOutcome] = []
    while done:
        lead = float(done[0].value or 0.0)
        tol = 1e-9 * max(1.0, abs(lead))
        group = [t for t in done if abs(float(t.value or 0.0) - lead) <= tol]
        group.sort(key=lambda t: (t.predict_us_per_row, t.model_bytes, t.number))
        ranked.extend(group)
        done = [t for t in done if t not in group]
    return ranked


def run_search(
    *,
    X: Any,
    y: np.ndarray,
    folds: list[tuple[np.ndarray, np.ndarray]],
    candidates: list[CandidateSpec],
    search: SearchSpec,
    task: str,
    primary: str,
    transformer: Any,
    classes: list[Any] | None = None,
    positive_label: Any | None = None,
    keep_oof: bool = False,
    client: Client | None = None,
    experiment_id: str | None = None,
    parent_run_id: str | None = None,
    progress: Progress | None = None,
) -> SearchResult:
    """Search ``candidates`` on ``folds`` of ``(X, y)``; log each trial under ``parent_run_id``.

    ``folds`` index rows of ``X``/``y``. With ``client`` and ``parent_run_id`` each trial
    becomes a child run. ``keep_oof`` keeps the out-of-fold predictions of completed trials
    (used when there is no test split).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = metric_info(primary, task).direction
    names = [c.name for c in candidates]
    spaces = {c.name: c.search_space() for c in candidates}
    fixed = {c.name: dict(c.params) for c in candidates}
    distinct = sum(1 if not spaces[n] else math.inf for n in dict.fromkeys(names))
    budget = int(min(search.trials, distinct))
    notes: list[str] = []
    if budget < search.trials:
        notes.append(f"{budget} trial(s): the candidates have no search space to explore")
    study = optuna.create_study(
        direction=direction,  # type: ignore[arg-type]
        sampler=optuna.samplers.TPESampler(seed=search.seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3),
    )
    for name in dict.fromkeys(names):
        study.enqueue_trial({"candidate": name}, skip_if_exists=False)
    started = time.monotonic()
    outcomes: list[TrialOutcome] = []
    seen: dict[str, TrialOutcome] = {}
    stopped_by = "trials"
    executor = _executor(search.n_jobs, X, y)
    try:
        while len(outcomes) < budget:
            if search.timeout is not None and time.monotonic() - started >= search.timeout:
                stopped_by = "timeout"
                break
            size = min(max(ROUND, search.n_jobs), budget - len(outcomes))
            finished = [t for t in study.get_trials(deepcopy=False) if t.state.is_finished()]
            asked = []
            for _ in range(size):
                trial = study.ask()
                candidate = trial.suggest_categorical("candidate", names)
                params = dict(fixed[candidate])
                for key, dist in spaces[candidate].items():
                    params[key] = suggest(trial, f"{candidate}.{key}", dist)
                asked.append((trial, candidate, params))
            jobs: list[TrialJob] = []
            duplicates: dict[int, TrialOutcome | int] = {}
            pending: dict[str, int] = {}
            for trial, candidate, params in asked:
                key = _config_key(candidate, params)
                if key in seen or key in pending:
                    duplicates[trial.number] = seen.get(key) or pending[key]
                    continue
                pending[key] = trial.number
                jobs.append(
                    TrialJob(
                        number=trial.number,
                        candidate=candidate,
                        params=params,
                        task=task,
                        seed=search.seed,
                        folds=folds,
                        primary=primary,
                        direction=direction,
                        transformer=transformer,
                        classes=classes,
                        positive_label=positive_label,
                        keep_oof=keep_oof,
                        prune_against=list(finished) if search.pruning else None,
                    )
                )
            for job in jobs:
                if progress:
                    progress("trial_start", {"number": job.number, "candidate": job.candidate})
            results = {o.number: o for o in _evaluate(executor, jobs)}
            for trial, candidate, params in asked:
                if trial.number in duplicates:
                    source = duplicates[trial.number]
                    original = results[source] if isinstance(source, int) else source
                    outcome = _copy_of(original, trial.number, params)
                else:
                    outcome = results[trial.number]
                    seen[_config_key(candidate, params)] = outcome
                _tell(study, trial, outcome)
                if client is not None and parent_run_id is not None:
                    outcome.run_id = _log_trial(
                        client, experiment_id, parent_run_id, outcome, primary
                    )
                outcomes.append(outcome)
                if progress:
                    progress("trial_end", _trial_payload(outcome, study, direction))
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    ranking = rank_trials(outcomes, direction)
    return SearchResult(
        trials=outcomes,
        ranking=ranking,
        direction=direction,
        seconds=time.monotonic() - started,
        stopped_by=stopped_by,
        notes=notes,
    )


def _executor(n_jobs: int, X: Any, y: np.ndarray) -> Any:
    if n_jobs <= 1:
        install_data(X, y)
        return None
    from joblib.externals.loky.process_executor import ProcessPoolExecutor

    # loky (scikit-learn's own process pool, through joblib) starts clean interpreters like
    # spawn — the parent holds database connections, a writer thread and maybe torch's thread
    # pool, none of which survive a fork — but, unlike spawn, does not re-run the caller's
    # __main__ module, so a script without an ``if __name__ == "__main__"`` guard works.
    return ProcessPoolExecutor(max_workers=n_jobs, initializer=install_data, initargs=(X, y))


def _evaluate(executor: Any, jobs: list[TrialJob]) -> list[TrialOutcome]:
    if executor is None:
        return [cross_validate(job) for job in jobs]
    return list(executor.map(cross_validate, jobs))


def _tell(study: Any, trial: Any, outcome: TrialOutcome) -> None:
    from optuna.trial import TrialState

    for step, value in enumerate(outcome.intermediate):
        trial.report(value, step)
    if outcome.state == "COMPLETE":
        study.tell(trial, outcome.value)
    elif outcome.state == "PRUNED":
        study.tell(trial, state=TrialState.PRUNED)
    else:
        study.tell(trial, state=TrialState.FAIL)


def _config_key(candidate: str, params: Mapping[str, Any]) -> str:
    return json.dumps([candidate, sorted(params.items())], default=str)


def _copy_of(original: TrialOutcome, number: int, params: dict[str, Any]) -> TrialOutcome:
    """A trial that drew a configuration already scored: reuse the result, don't refit."""
    from dataclasses import replace

    return replace(
        original, number=number, params=params, duplicate_of=original.number, run_id=None
    )


def _trial_payload(outcome: TrialOutcome, study: Any, direction: str) -> dict[str, Any]:
    try:
        best = study.best_value
    except ValueError:  # no completed trial yet
        best = None
    return {
        "number": outcome.number,
        "candidate": outcome.candidate,
        "state": outcome.state,
        "value": outcome.value,
        "best": best,
        "error": outcome.error,
    }


def _log_trial(
    client: Client,
    experiment_id: str | None,
    parent_run_id: str,
    outcome: TrialOutcome,
    primary: str,
) -> str:
    from loopml.tracking.entities import RunStatus

    tags = {
        "loopml.kind": "trial",
        "loopml.trial": outcome.number,
        "loopml.candidate": outcome.candidate,
        "loopml.trial.state": outcome.state,
    }
    if outcome.duplicate_of is not None:
        tags["loopml.trial.duplicate_of"] = outcome.duplicate_of
    if outcome.error:
        tags["loopml.trial.error"] = outcome.error
    if outcome.warnings:
        tags["loopml.trial.warnings"] = " | ".join(outcome.warnings)[:4000]
    run = client.create_run(
        experiment_id,
        run_name=f"trial-{outcome.number:03d}-{outcome.candidate}",
        tags=tags,
        parent_run_id=parent_run_id,
    )
    run_id = run.info.run_id
    client.log_params(run_id, {"candidate": outcome.candidate, **outcome.params})
    metrics = {f"cv_{k}": v for k, v in outcome.metrics.items()}
    if outcome.state != "FAIL":
        metrics.update(
            fit_seconds=outcome.fit_seconds,
            predict_us_per_row=outcome.predict_us_per_row,
            model_bytes=float(outcome.model_bytes),
        )
    if metrics:
        client.log_metrics(run_id, metrics)
    for step, value in enumerate(outcome.fold_primary):
        client.log_metric(run_id, f"{primary}_fold", value, step=step)
    status = RunStatus.FAILED if outcome.state == "FAIL" else RunStatus.FINISHED
    client.set_terminated(run_id, status)
    return run_id
