"""Cleaning with quarantine: the recipe (:class:`CleaningSpec`) and the engine that applies it.

The engine lives in :mod:`loopml.data.clean_engine`; this module is what callers import.
"""

from __future__ import annotations

from loopml.data.cleaning_spec import (
    CleaningSpec,
    DuplicatesSpec,
    MissingRule,
    MissingSpec,
    OutlierRule,
)

__all__ = ["CleaningSpec", "DuplicatesSpec", "MissingRule", "MissingSpec", "OutlierRule"]
