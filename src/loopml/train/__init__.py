"""Model development: the project file, candidates, search, evaluation, selection, pipeline.

Names load on first use, so ``import loopml.train`` does not import scikit-learn or Optuna::

    from loopml.train import load_project, run_project

    result = run_project("examples/quickstart")
    print(result.model)  # {'name': 'quickstart', 'version': 1, 'aliases': [...], ...}
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.train.candidates import CANDIDATES, build_pipeline, get_candidate
    from loopml.train.metrics import evaluate
    from loopml.train.pipeline import ProjectResult, ProjectRun, run_project
    from loopml.train.project import Project, ProjectSpec, load_project, project_schema
    from loopml.train.search import run_search
    from loopml.train.splits import make_split
    from loopml.train.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

_HOMES = {
    "CANDIDATES": "loopml.train.candidates",
    "build_pipeline": "loopml.train.candidates",
    "get_candidate": "loopml.train.candidates",
    "evaluate": "loopml.train.metrics",
    "ProjectResult": "loopml.train.pipeline",
    "ProjectRun": "loopml.train.pipeline",
    "run_project": "loopml.train.pipeline",
    "Project": "loopml.train.project",
    "ProjectSpec": "loopml.train.project",
    "load_project": "loopml.train.project",
    "project_schema": "loopml.train.project",
    "run_search": "loopml.train.search",
    "make_split": "loopml.train.splits",
    "TorchMLPClassifier": "loopml.train.torch_mlp",
    "TorchMLPRegressor": "loopml.train.torch_mlp",
}

__all__ = [
    "CANDIDATES",
    "Project",
    "ProjectResult",
    "ProjectRun",
    "ProjectSpec",
    "TorchMLPClassifier",
    "TorchMLPRegressor",
    "build_pipeline",
    "evaluate",
    "get_candidate",
    "load_project",
    "make_split",
    "project_schema",
    "run_project",
    "run_search",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'loopml.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
