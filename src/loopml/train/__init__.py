"""Model development: the project file, candidates, search, evaluation, selection.

Names load on first use, so ``import loopml.train`` does not import scikit-learn or Optuna::

    from loopml.train import load_project

    project = load_project("examples/quickstart")

The whole project pipeline (data to a registered, packaged model) is :mod:`loopml.pipeline`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loopml._lazy import lazy_exports

if TYPE_CHECKING:
    from loopml.train.candidates import CANDIDATES, build_pipeline, get_candidate
    from loopml.train.metrics import evaluate
    from loopml.train.project import Project, ProjectSpec, load_project, project_schema
    from loopml.train.search import run_search
    from loopml.train.splits import make_split
    from loopml.train.torch_mlp import TorchMLPClassifier, TorchMLPRegressor

_HOMES = {
    "CANDIDATES": "loopml.train.candidates",
    "build_pipeline": "loopml.train.candidates",
    "get_candidate": "loopml.train.candidates",
    "evaluate": "loopml.train.metrics",
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
    "ProjectSpec",
    "TorchMLPClassifier",
    "TorchMLPRegressor",
    "build_pipeline",
    "evaluate",
    "get_candidate",
    "load_project",
    "make_split",
    "project_schema",
    "run_search",
]

__getattr__, __dir__ = lazy_exports(__name__, _HOMES)
