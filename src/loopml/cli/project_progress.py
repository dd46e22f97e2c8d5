"""The live display of ``loopml run``: one line per stage, a bar for the search's trials.

Drawn on stderr with Rich, from the pipeline's progress events; with ``enabled=False`` (not a
terminal, ``--quiet``) events are ignored, so piping the output never shows control codes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from loopml.cli.output import stderr

if TYPE_CHECKING:
    from loopml.train.project import ProjectSpec

__all__ = ["LiveProgress"]

STAGES = ("ingest", "train", "evaluate", "package", "register")


class LiveProgress:
    """A context manager whose :meth:`handle` receives ``(event, payload)`` from the pipeline."""

    def __init__(self, spec: ProjectSpec, *, enabled: bool, trials: int | None = None) -> None:
        self.spec = spec
        self.enabled = enabled
        self.total_trials = trials or spec.search.trials
        self._progress: Any = None
        self._stage_tasks: dict[str, Any] = {}
        self._trial_task: Any = None
        self._done_trials = 0

    def __enter__(self) -> LiveProgress:
        if not self.enabled:
            return self
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=stderr,
            transient=False,
        )
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def handle(self, event: str, payload: Mapping[str, Any]) -> None:
        """Update the display for one pipeline event (unknown events are ignored)."""
        progress = self._progress
        if progress is None:
            return
        from rich.markup import escape

        if event == "stage_start":
            stage = str(payload["stage"])
            self._stage_tasks[stage] = progress.add_task(f"[bold]{stage}[/]", total=None, detail="")
        elif event == "stage_end":
            task = self._stage_tasks.get(str(payload["stage"]))
            if task is not None:
                mark = "" if payload.get("ok") else "[red]failed[/]"
                progress.update(task, total=1, completed=1, detail=mark)
        elif event == "ingest_progress":
            task = self._stage_tasks.get("ingest")
            if task is not None:
                progress.update(task, detail=f"{payload['stage']}: {payload['rows']:,} rows")
        elif event == "dataset":
            task = self._stage_tasks.get("ingest")
            if task is not None:
                reused = " (reused)" if payload.get("reused") else ""
                progress.update(
                    task, detail=f"{escape(str(payload['ref']))}{reused}, {payload['rows']:,} rows"
                )
        elif event == "trial_start" and self._trial_task is None:
            self._trial_task = progress.add_task("  trials", total=self.total_trials, detail="")
        elif event == "trial_end":
            self._done_trials += 1
            best = payload.get("best")
            best_text = f"best {self.spec.primary_metric} {best:.4g}" if best is not None else ""
            last = f"#{payload['number']} {escape(str(payload['candidate']))} {payload['state']}"
            if self._trial_task is None:
                self._trial_task = progress.add_task("  trials", total=self.total_trials, detail="")
            progress.update(
                self._trial_task, completed=self._done_trials, detail=f"{best_text}  [dim]{last}[/]"
            )
        elif event == "refit":
            task = self._stage_tasks.get("train")
            if task is not None:
                progress.update(task, detail=f"refit {escape(str(payload['candidate']))}")
        elif event == "registered":
            task = self._stage_tasks.get("register")
            if task is not None:
                aliases = ", ".join(payload.get("aliases", []))
                progress.update(
                    task, detail=f"{escape(str(payload['name']))} v{payload['version']} ({aliases})"
                )
