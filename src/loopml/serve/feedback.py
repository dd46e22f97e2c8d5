"""Ground truth for past predictions: ``POST /feedback``.

Body: ``{"request_id": "...", "label": 1.0}`` (``"row": 3`` picks one row of a multi-row
request; without it the label applies to every row), or a batch as
``{"feedback": [{...}, ...]}`` or a bare list. Every request id must be one this server (or
another process writing the same log) answered; if any is unknown the whole batch is
refused with 404 naming the unknown ids, so a typo never silently drops a label.

Known ids are looked up in memory first (the last million requests of this process), then in
the prediction log on disk (Parquet and other workers' spools), off the event loop.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from loopml.errors import InvalidInputError, NotFoundError
from loopml.serve.predlog import FeedbackEntry, PredictionLog
from loopml.serve.protocols.body import check_json, json_reply, load_json
from loopml.serve.state import Call, Reply, ServerState

__all__ = ["FAST_ROUTES", "feedback", "find_requests"]

_MAX_ITEMS = 10_000


async def feedback(call: Call, state: ServerState) -> Reply:
    """Record labels for earlier predictions."""
    check_json(call)
    items = _items(load_json(call.body))
    log = state.log
    if log is None:
        raise InvalidInputError(
            "this server keeps no prediction log, so it cannot take feedback",
            hint="start it without --no-log",
        )
    known: dict[str, tuple[str, str, int]] = {}
    missing = []
    for item in items:
        rid = item["request_id"]
        found = log.recent.get(rid)
        if found is None:
            missing.append(rid)
        else:
            known[rid] = found
    if missing:
        found_on_disk = await asyncio.to_thread(find_requests, log, missing)
        if len(found_on_disk) < len(set(missing)) and state.settings.log_spool_interval_s < 5:
            # Another worker may have answered it a moment ago and not spooled it yet.
            await asyncio.sleep(state.settings.log_spool_interval_s * 2)
            found_on_disk = await asyncio.to_thread(find_requests, log, missing)
        known.update(found_on_disk)
    unknown = sorted({item["request_id"] for item in items} - set(known))
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise NotFoundError(
            f"unknown request id(s) {shown}{more}: no prediction with that id is in the log",
            hint="use the request_id returned with the prediction (also in the X-Request-ID "
            "header); nothing from this batch was recorded",
        )
    now = int(time.time() * 1000)
    for item in items:
        name, version, rows = known[item["request_id"]]
        row = item.get("row")
        if row is not None and rows and not 0 <= row < rows:
            raise InvalidInputError(
                f"feedback row {row} is out of range for request {item['request_id']!r}, "
                f"which had {rows} row(s)"
            )
    for item in items:
        name, version, _ = known[item["request_id"]]
        log.record_feedback(
            FeedbackEntry(item["request_id"], item.get("row"), now, name, version, item["label"])
        )
    return json_reply({"accepted": len(items)})


def _items(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, dict) and "feedback" in document:
        if set(document) != {"feedback"}:
            raise InvalidInputError('a feedback batch is {"feedback": [...]} with nothing else')
        document = document["feedback"]
    raw = document if isinstance(document, list) else [document]
    if not raw:
        raise InvalidInputError("feedback batch is empty; send at least one {request_id, label}")
    if len(raw) > _MAX_ITEMS:
        raise InvalidInputError(
            f"feedback batch has {len(raw)} items; at most {_MAX_ITEMS} per request"
        )
    items = []
    for i, item in enumerate(raw):
        where = f"feedback[{i}]" if isinstance(document, list) else "feedback"
        if not isinstance(item, dict):
            raise InvalidInputError(f"{where} must be an object with request_id and label")
        extra = sorted(set(item) - {"request_id", "label", "row"})
        if extra:
            raise InvalidInputError(
                f"{where} has unexpected field(s) {extra}", hint="fields: request_id, label, row"
            )
        if not isinstance(item.get("request_id"), str) or not item["request_id"]:
            raise InvalidInputError(f"{where}.request_id must be a non-empty string")
        if "label" not in item or item["label"] is None:
            raise InvalidInputError(f"{where}.label is missing; send the observed outcome")
        if not isinstance(item["label"], str | int | float | bool):
            raise InvalidInputError(f"{where}.label must be a number, string or boolean")
        row = item.get("row")
        if row is not None and (type(row) is not int or row < 0):
            raise InvalidInputError(f"{where}.row must be a non-negative integer")
        items.append(item)
    return items


def find_requests(log: PredictionLog, request_ids: list[str]) -> dict[str, tuple[str, str, int]]:
    """``{request_id: (model, version, rows)}`` for ids present in the log's files.

    Looks in the published Parquet files (local or on an object store) and in the spools
    not yet rolled, this process's and those of processes that died.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from loopml.serve.predlog import _read_stream

    wanted = pa.array(sorted(set(request_ids)), pa.string())
    found: dict[str, tuple[str, str, int]] = {}
    columns = ["request_id", "model", "version", "row", "status", "shadow"]
    tables = []
    dataset = log.location.dataset("predictions")
    if dataset is not None:
        tables.append(dataset.to_table(columns=columns, filter=pc.field("request_id").isin(wanted)))
    for stream in sorted(log.spool_folder.glob("*/predictions~*.arrows")):
        for batch in _read_stream(stream):
            table = pa.Table.from_batches([batch]).select(columns)
            tables.append(table.filter(pc.is_in(table["request_id"], value_set=wanted)))
    for table in tables:
        for rid, model, version, row, status, shadow in zip(
            *(table[c].to_pylist() for c in table.column_names), strict=True
        ):
            if status != 200 or shadow:
                continue
            _, _, rows = found.get(rid, (model, version, 0))
            found[rid] = (model, version, max(rows, (row or 0) + 1))
    return found


FAST_ROUTES = [("/feedback", feedback)]
