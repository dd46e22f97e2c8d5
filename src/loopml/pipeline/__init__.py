"""The project pipeline: a ``loopml.yaml`` project from data to a registered, packaged model.

It sits above :mod:`loopml.data`, :mod:`loopml.train` and :mod:`loopml.package` and strings
their stages together (ingest → validate/clean → train → evaluate → package → register);
each stage is also a method of :class:`ProjectRun`::

    from loopml.pipeline import run_project

    result = run_project("examples/quickstart")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.pipeline.runner import ProjectResult, ProjectRun, run_project

__all__ = ["ProjectResult", "ProjectRun", "run_project"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from loopml.pipeline import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'loopml.pipeline' has no attribute {name!r}")
