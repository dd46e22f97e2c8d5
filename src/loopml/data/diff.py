"""Comparing two versions of a dataset: schema, size, column statistics, and keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loopml.data.versions import DatasetStore, DatasetVersionInfo

__all__ = ["diff_versions"]

_STATS = ("nulls", "mean", "std", "min", "max")


def diff_versions(
    store: DatasetStore, a: DatasetVersionInfo, b: DatasetVersionInfo
) -> dict[str, Any]:
    """What changed from ``a`` to ``b``. Row-level key comparison needs a contract key shared
    by both versions and reads only the key columns."""
    cols_a = {c["name"]: c["type"] for c in (a.schema or {}).get("columns", [])}
    cols_b = {c["name"]: c["type"] for c in (b.schema or {}).get("columns", [])}
    prof_a = (a.profile or {}).get("columns", {})
    prof_b = (b.profile or {}).get("columns", {})
    columns: dict[str, Any] = {}
    for name in cols_a.keys() & cols_b.keys():
        pa_, pb = prof_a.get(name, {}), prof_b.get(name, {})
        changed = {
            stat: {"a": pa_.get(stat), "b": pb.get(stat)}
            for stat in _STATS
            if pa_.get(stat) != pb.get(stat) and (stat in pa_ or stat in pb)
        }
        if changed:
            columns[name] = changed
    result: dict[str, Any] = {
        "a": a.ref,
        "b": b.ref,
        "same_content": a.content_hash == b.content_hash,
        "rows": {"a": a.row_count, "b": b.row_count, "delta": b.row_count - a.row_count},
        "schema": {
            "added": sorted(cols_b.keys() - cols_a.keys()),
            "removed": sorted(cols_a.keys() - cols_b.keys()),
            "retyped": {
                c: {"a": cols_a[c], "b": cols_b[c]}
                for c in sorted(cols_a.keys() & cols_b.keys())
                if cols_a[c] != cols_b[c]
            },
        },
        "columns": dict(sorted(columns.items())),
        "keys": None,
    }
    key = _shared_key(store, a, b)
    if key:
        import polars as pl

        ka = store.read(a.ref, as_="polars", columns=key).unique()
        kb = store.read(b.ref, as_="polars", columns=key).unique()
        result["keys"] = {
            "key": key,
            "added": kb.join(ka, on=key, how="anti", nulls_equal=True).height,
            "removed": ka.join(kb, on=key, how="anti", nulls_equal=True).height,
            "kept": kb.join(ka, on=key, how="semi", nulls_equal=True).height,
        }
        del pl
    return result


def _shared_key(store: DatasetStore, a: DatasetVersionInfo, b: DatasetVersionInfo) -> list[str]:
    ca, cb = store.contract(a.ref), store.contract(b.ref)
    for contract in (cb, ca):
        if contract and contract.key:
            names_a = {c["name"] for c in (a.schema or {}).get("columns", [])}
            names_b = {c["name"] for c in (b.schema or {}).get("columns", [])}
            if set(contract.key) <= names_a & names_b:
                return list(contract.key)
    return []
