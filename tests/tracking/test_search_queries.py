"""Run search against real databases: the same runs, filters and orderings on SQLite and on the
local PostgreSQL, checked against hand-written expectations and against a Python reference
evaluator of the filter semantics."""

from __future__ import annotations

import math
import os
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loopml.errors import InvalidInputError
from loopml.store import Database
from loopml.store.models import Base
from loopml.tracking.search import build_search_statement
from loopml.tracking.search_filter import (
    And,
    Comparison,
    Expr,
    Not,
    Or,
    format_filter,
    parse_filter,
)
from loopml.tracking.search_syntax import Identifier

PG_SERVER = os.environ.get("LOOPML_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
TABLES = Base.metadata.tables
NAN = float("nan")


@dataclass(frozen=True)
class FakeRun:
    run_id: str
    experiment_id: int = 1
    name: str | None = None
    status: str = "FINISHED"
    start_time: int = 1000
    end_time: int | None = None
    user: str | None = None
    parent_run_id: str | None = None
    artifact_uri: str | None = None
    lifecycle_stage: str = "active"
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


INJECTION = "x'; DROP TABLE runs; --"

RUNS = [
    FakeRun(
        "r01",
        name="baseline",
        start_time=1000,
        end_time=2000,
        user="ana",
        artifact_uri="file:///a/r01",
        metrics={"rmse": 0.3, "acc": 0.9},
        params={"model": "rf", "depth": "10"},
        tags={"team": "risk"},
    ),
    FakeRun(
        "r02",
        name="tuned-rf",
        start_time=1100,
        end_time=2100,
        user="bob",
        parent_run_id="r01",
        metrics={"rmse": 0.5, "acc": NAN},
        params={"model": "RF", "depth": "5"},
        tags={"team": "Risk", "note": "50% off"},
    ),
    FakeRun(
        "r03",
        status="RUNNING",
        start_time=1200,
        metrics={"rmse": -1.5e-3},
        params={"model": "gbm"},
    ),
    FakeRun(
        "r04",
        name="lr_1",
        status="FAILED",
        start_time=1300,
        end_time=1400,
        user="ana",
        metrics={"rmse": NAN},
        params={"model": "lr", "learning-rate": "0.1"},
        tags={"my tag": "it's"},
    ),
    FakeRun(
        "r05",
        experiment_id=2,
        name="lr%1",
        start_time=1400,
        end_time=1500,
        user="carl",
        metrics={"my metric": 7, "rmse": 0.0},
        params={"model": INJECTION},
        tags={"team": "ops", "mlflow.source.type": "LOCAL"},
    ),
    FakeRun(
        "r06",
        experiment_id=2,
        name="Ünïcode",
        status="KILLED",
        start_time=1500,
        end_time=1600,
        user="dora",
        metrics={"acc": 0.5, "rmse": 1e10},
        params={"model": "svm", "path": "C:\\tmp_1"},
        tags={"team": "risk_ops"},
    ),
    FakeRun(
        "r07",
        name="deleted-run",
        start_time=1600,
        lifecycle_stage="deleted",
        metrics={"rmse": 0.1},
        params={"model": "rf"},
        tags={"team": "risk"},
    ),
    FakeRun("r08", name="no-metrics", start_time=1000, end_time=1050, user="bob",
            tags={"team": ""}),
]  # fmt: skip
ACTIVE = [run for run in RUNS if run.lifecycle_stage == "active"]


def _insert(db: Database, runs: list[FakeRun]) -> None:
    with db.write() as conn:
        conn.execute(
            sa.insert(TABLES["experiments"]),
            [
                {"experiment_id": i, "name": f"exp{i}", "created_at": 0, "updated_at": 0}
                for i in (1, 2)
            ],
        )
        conn.execute(
            sa.insert(TABLES["runs"]),
            [
                {
                    "run_id": run.run_id,
                    "experiment_id": run.experiment_id,
                    "name": run.name,
                    "status": run.status,
                    "start_time": run.start_time,
                    "end_time": run.end_time,
                    "heartbeat_at": run.start_time,
                    "parent_run_id": None,
                    "user": run.user,
                    "artifact_uri": run.artifact_uri,
                    "lifecycle_stage": run.lifecycle_stage,
                    "summary": "{}",
                }
                for run in runs
            ],
        )
        # Parents after all runs exist, as the foreign key requires.
        for run in runs:
            if run.parent_run_id:
                conn.execute(
                    sa.update(TABLES["runs"])
                    .where(TABLES["runs"].c.run_id == run.run_id)
                    .values(parent_run_id=run.parent_run_id)
                )
        metric_rows = [
            {
                "run_id": run.run_id,
                "key": key,
                "value": 0.0 if math.isnan(value) else value,
                "is_nan": math.isnan(value),
                "step": 0,
                "timestamp": 0,
            }
            for run in runs
            for key, value in run.metrics.items()
        ]
        conn.execute(sa.insert(TABLES["latest_metrics"]), metric_rows)
        for table, attr in (("params", "params"), ("tags", "tags")):
            rows = [
                {"run_id": run.run_id, "key": key, "value": value}
                for run in runs
                for key, value in getattr(run, attr).items()
            ]
            conn.execute(sa.insert(TABLES[table]), rows)


def _pg_admin(*statements: str) -> None:
    engine = sa.create_engine(f"{PG_SERVER}/test", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(sa.text(statement))
    finally:
        engine.dispose()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """One store per backend for the whole module, holding :data:`RUNS`.

    The PostgreSQL database sorts text with an ICU en-US collation (not C), so the tests
    show that orderings agree with SQLite's code-point order whatever the server's locale.
    """
    name = None
    if request.param == "sqlite":
        uri = f"sqlite:///{tmp_path_factory.mktemp('search') / 'loopml.db'}"
    else:
        name = f"loopml_search_{uuid.uuid4().hex[:12]}"
        _pg_admin(
            f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
            "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
        uri = f"{PG_SERVER}/{name}"
    database = Database(uri)
    try:
        _insert(database, RUNS)
        yield database
    finally:
        database.dispose()
        if name is not None:
            _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def search(
    db: Database,
    filter_string: str = "",
    order_by: list[str] | None = None,
    *,
    experiment_ids: list[int | str] | None = None,
    lifecycle_stage: str | None = "active",
    max_results: int | None = None,
    offset: int = 0,
) -> list[str]:
    statement = build_search_statement(
        experiment_ids=experiment_ids,
        filter_string=filter_string,
        order_by=order_by,
        max_results=max_results,
        offset=offset,
        lifecycle_stage=lifecycle_stage,
    )
    with db.read() as conn:
        return [row.run_id for row in conn.execute(statement)]


def found(db: Database, filter_string: str) -> set[str]:
    return set(search(db, filter_string))


# --- filters, by hand -----------------------------------------------------------------------


def test_metric_comparisons_select_runs_by_latest_value(db: Database) -> None:
    assert found(db, "metrics.rmse < 0.4") == {"r01", "r03", "r05"}
    assert found(db, "metrics.rmse >= 0.5") == {"r02", "r06"}
    assert found(db, "metrics.rmse = 0") == {"r05"}
    assert found(db, "metrics.rmse <= -1.5e-3") == {"r03"}
    assert found(db, "metrics.rmse > 1E9") == {"r06"}
    assert found(db, "metric.acc != 0.9") == {"r06"}
    assert found(db, "metrics.rmse IN (0.3, 0.5)") == {"r01", "r02"}


def test_a_nan_metric_satisfies_no_comparison_but_counts_as_present(db: Database) -> None:
    # r04's rmse is NaN (stored as 0 with a flag): not = 0, not != 1, not < 1...
    assert "r04" not in found(db, "metrics.rmse = 0")
    assert "r04" not in found(db, "metrics.rmse != 1")
    assert "r04" not in found(db, "metrics.rmse < 1 or metrics.rmse >= 1")
    assert "r04" in found(db, "metrics.rmse IS NOT NULL")
    assert found(db, "metrics.acc IS NOT NULL") == {"r01", "r02", "r06"}


def test_comparisons_need_the_key_but_not_negates_the_whole_test(db: Database) -> None:
    assert found(db, "params.model != 'rf'") == {"r02", "r03", "r04", "r05", "r06"}
    assert found(db, "NOT params.model = 'rf'") == {"r02", "r03", "r04", "r05", "r06", "r08"}
    assert found(db, "metrics.acc != 0.5") == {"r01"}
    assert found(db, "not metrics.acc = 0.5") == {"r01", "r02", "r03", "r04", "r05", "r08"}


def test_params_and_tags_compare_as_case_sensitive_strings(db: Database) -> None:
    assert found(db, "params.model = 'rf'") == {"r01"}
    assert found(db, 'param.model = "RF"') == {"r02"}
    assert found(db, "params.depth = '10'") == {"r01"}
    assert found(db, "tags.team = 'risk'") == {"r01"}
    assert found(db, "tags.team = ''") == {"r08"}


def test_like_is_case_sensitive_and_ilike_is_not_on_every_backend(db: Database) -> None:
    assert found(db, "params.model LIKE 'r%'") == {"r01"}
    assert found(db, "params.model LIKE 'R_'") == {"r02"}
    assert found(db, "params.model ILIKE 'r%'") == {"r01", "r02"}
    assert found(db, "tags.team ILIKE 'RISK'") == {"r01", "r02"}
    assert found(db, "tags.team NOT LIKE 'risk%'") == {"r02", "r05", "r08"}
    assert found(db, "tags.team NOT ILIKE 'risk%'") == {"r05", "r08"}
    assert found(db, "run_name LIKE '%-%'") == {"r02", "r08"}


def test_like_escapes_match_percent_underscore_and_glob_characters_literally(
    db: Database,
) -> None:
    assert found(db, r"tags.note LIKE '50\% off'") == {"r02"}
    assert found(db, r"tags.note LIKE '50\%%'") == {"r02"}
    assert found(db, r"run_name LIKE 'lr\_%'") == {"r04"}
    assert found(db, r"run_name LIKE 'lr\%%'") == {"r05"}
    # A literal backslash is escaped once for the string and once for LIKE.
    assert found(db, r"params.path = 'C:\\tmp_1'") == {"r06"}
    assert found(db, r"params.path LIKE 'C:\\\\tmp\_1'") == {"r06"}
    assert found(db, r"params.path LIKE 'C:\\tmp\_1'") == set()
    # GLOB metacharacters are plain characters in LIKE patterns.
    assert found(db, "run_name LIKE '*'") == set()
    assert found(db, "run_name LIKE '[b]%'") == set()


def test_in_and_not_in_compare_against_lists(db: Database) -> None:
    assert found(db, "params.model IN ('rf', 'gbm', 'nope')") == {"r01", "r03"}
    assert found(db, "params.model NOT IN ('rf', 'RF')") == {"r03", "r04", "r05", "r06"}
    assert found(db, "run_id IN ('r01', 'r08',)") == {"r01", "r08"}
    assert found(db, "attributes.run_id NOT IN ('r01')") == {
        run.run_id for run in ACTIVE if run.run_id != "r01"
    }
    assert found(db, "start_time IN (1000, 1100.0)") == {"r01", "r02", "r08"}


def test_is_null_finds_runs_missing_a_key(db: Database) -> None:
    assert found(db, "metrics.rmse IS NULL") == {"r08"}
    assert found(db, "params.depth is not null") == {"r01", "r02"}
    assert found(db, "tags.team IS NULL") == {"r03", "r04"}
    assert found(db, "tags.team IS NOT NULL and tags.team = ''") == {"r08"}


def test_attributes_compare_by_column_type(db: Database) -> None:
    assert found(db, "status = 'FINISHED'") == {"r01", "r02", "r05", "r08"}
    assert found(db, "attributes.status IN ('FAILED', 'KILLED')") == {"r04", "r06"}
    assert found(db, "attribute.start_time >= 1400") == {"r05", "r06"}
    assert found(db, "start_time > 1099.5 AND start_time < 1100.5") == {"r02"}
    assert found(db, "created < 1100") == {"r01", "r08"}
    assert found(db, "user_id = 'ana'") == {"r01", "r04"}
    assert found(db, "user = 'bob'") == {"r02", "r08"}
    assert found(db, "run_name = 'Ünïcode'") == {"r06"}
    assert found(db, "experiment_id = 2") == {"r05", "r06"}
    assert found(db, "artifact_uri LIKE 'file://%'") == {"r01"}
    assert found(db, "parent_run_id = 'r01'") == {"r02"}


def test_nullable_attributes_match_is_null_and_never_a_comparison(db: Database) -> None:
    assert found(db, "end_time IS NULL") == {"r03"}
    assert found(db, "parent_run_id IS NULL") == {run.run_id for run in ACTIVE} - {"r02"}
    assert found(db, "run_name IS NULL") == {"r03"}
    assert "r03" not in found(db, "end_time > 0 or end_time <= 0")
    assert "r03" in found(db, "not end_time > 0")
    assert "r03" not in found(db, "user_id != 'ana'")


def test_or_and_not_combine_with_parentheses(db: Database) -> None:
    assert found(db, "params.model = 'rf' OR params.model = 'gbm'") == {"r01", "r03"}
    assert found(db, "tags.team = 'risk' or tags.team = 'ops' and experiment_id = 1") == {"r01"}
    assert found(db, "(tags.team = 'risk' or tags.team = 'ops') and experiment_id = 2") == {"r05"}
    assert found(db, "NOT (metrics.rmse > 0 OR metrics.rmse IS NULL)") == {"r03", "r04", "r05"}
    assert found(db, "not not status = 'RUNNING'") == {"r03"}


def test_quoted_and_dotted_keys_name_metrics_params_and_tags(db: Database) -> None:
    assert found(db, "metrics.`my metric` = 7") == {"r05"}
    assert found(db, 'metrics."my metric" > 6.5') == {"r05"}
    assert found(db, "params.`learning-rate` = '0.1'") == {"r04"}
    assert found(db, "tags.`my tag` = 'it''s'") == {"r04"}
    assert found(db, r"tags.`my tag` = 'it\'s'") == {"r04"}
    assert found(db, 'tags.`my tag` = "it\'s"') == {"r04"}
    assert found(db, "tags.mlflow.source.type = 'LOCAL'") == {"r05"}


def test_an_empty_filter_matches_every_run_in_scope(db: Database) -> None:
    assert found(db, "") == {run.run_id for run in ACTIVE}
    assert found(db, "   ") == {run.run_id for run in ACTIVE}


def test_experiment_ids_and_lifecycle_stage_narrow_the_search(db: Database) -> None:
    assert set(search(db, experiment_ids=[2])) == {"r05", "r06"}
    assert set(search(db, experiment_ids=[1, 2])) == {run.run_id for run in ACTIVE}
    assert search(db, experiment_ids=[]) == []
    assert set(search(db, experiment_ids=["2"])) == {"r05", "r06"}
    assert search(db, lifecycle_stage="deleted") == ["r07"]
    assert "r07" in search(db, "params.model = 'rf'", lifecycle_stage=None)


# --- ordering and paging --------------------------------------------------------------------


def test_default_order_is_newest_first_then_run_id(db: Database) -> None:
    assert search(db) == ["r06", "r05", "r04", "r03", "r02", "r01", "r08"]


def test_metric_order_puts_missing_and_nan_last_in_both_directions(db: Database) -> None:
    # rmse: r03 -0.0015, r05 0, r01 0.3, r02 0.5, r06 1e10; r04 NaN and r08 missing come
    # last, newest first.
    assert search(db, order_by=["metrics.rmse"]) == [
        "r03", "r05", "r01", "r02", "r06", "r04", "r08"
    ]  # fmt: skip
    assert search(db, order_by=["metrics.rmse DESC"]) == [
        "r06", "r02", "r01", "r05", "r03", "r04", "r08"
    ]  # fmt: skip
    assert search(db, order_by=["metrics.acc desc"])[:2] == ["r01", "r06"]


def test_params_tags_and_attributes_order_by_code_point_with_nulls_last(db: Database) -> None:
    # Code-point order puts upper case first ("RF" < "gbm"), on PostgreSQL too.
    assert search(db, order_by=["params.model ASC"]) == [
        "r02", "r03", "r04", "r01", "r06", "r05", "r08"
    ]  # fmt: skip
    assert search(db, order_by=["tags.team DESC", "start_time ASC"]) == [
        "r06", "r01", "r05", "r02", "r08", "r03", "r04"
    ]  # fmt: skip
    assert search(db, order_by=["run_name"]) == ["r01", "r05", "r04", "r08", "r02", "r06", "r03"]
    assert search(db, order_by=["attributes.end_time DESC"])[-1] == "r03"
    assert search(db, order_by=["start_time ASC", "run_id DESC"])[:2] == ["r08", "r01"]


def test_max_results_and_offset_page_through_a_stable_order(db: Database) -> None:
    everything = search(db, order_by=["metrics.rmse DESC"])
    pages = [search(db, order_by=["metrics.rmse DESC"], max_results=3, offset=o) for o in (0, 3, 6)]
    assert [run for page in pages for run in page] == everything
    assert search(db, max_results=0) == []


def test_bad_paging_and_scope_values_are_rejected_before_any_sql(db: Database) -> None:
    with pytest.raises(InvalidInputError, match="max_results must be a non-negative integer"):
        search(db, max_results=-1)
    with pytest.raises(InvalidInputError, match="offset must be a non-negative integer"):
        search(db, offset=-5)
    with pytest.raises(InvalidInputError, match="lifecycle_stage must be one of"):
        search(db, lifecycle_stage="gone")
    with pytest.raises(InvalidInputError, match="experiment id 'abc' is not an integer"):
        build_search_statement(experiment_ids=["abc"])
    with pytest.raises(InvalidInputError, match=r"experiment id 1\.5 is not an integer"):
        build_search_statement(experiment_ids=[1.5])  # type: ignore[list-item]


# --- injection ------------------------------------------------------------------------------

_NASTY = st.text(
    alphabet=st.sampled_from(list("'\"`\\%_;-*?[]() \nxyzDROPTABLE"))
    | st.characters(exclude_categories=["Cs"], exclude_characters="\x00"),
    min_size=1,
    max_size=30,
)


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def _like_literal(value: str) -> str:
    """A LIKE pattern matching exactly ``value``, quoted as a filter literal."""
    return _quote("".join("\\" + ch if ch in "%_\\" else ch for ch in value))


def _tables_survive(db: Database) -> None:
    with db.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(TABLES["runs"])).scalar() == 8


def test_a_stored_injection_payload_matches_itself_literally(db: Database) -> None:
    assert found(db, f"params.model = {_quote(INJECTION)}") == {"r05"}
    assert found(db, f"params.model LIKE {_quote(INJECTION)}") == {"r05"}
    assert found(db, "params.model = 'x'' OR ''1''=''1'") == set()
    _tables_survive(db)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=_NASTY)
def test_string_literals_and_keys_are_bound_parameters(db: Database, payload: str) -> None:
    key = "`" + payload.replace("\\", "\\\\").replace("`", "``") + "`"
    expected = {"r05"} if payload == INJECTION else set()
    assert found(db, f"params.model = {_quote(payload)}") == expected
    assert found(db, f"params.model LIKE {_like_literal(payload)}") == expected
    assert found(db, f"tags.{key} IN ({_quote(payload)}, 'b')") == set()
    assert found(db, f"params.{key} IS NOT NULL") == set()
    _tables_survive(db)


# --- generated filters agree with a Python reference ----------------------------------------


def _like(pattern: str, *, fold: bool) -> Callable[[str], bool]:
    out = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    regex = re.compile("".join(out), re.DOTALL | (re.IGNORECASE if fold else 0))
    return lambda value: regex.fullmatch(value) is not None


def _test(op: str, actual: object, expected: object) -> bool:
    if op == "=":
        return actual == expected
    if op == "!=":
        return actual != expected
    if op in ("<", "<=", ">", ">="):
        assert isinstance(actual, int | float)
        assert isinstance(expected, int | float)
        return {
            "<": actual < expected,
            "<=": actual <= expected,
            ">": actual > expected,
            ">=": actual >= expected,
        }[op]
    if op in ("IN", "NOT IN"):
        assert isinstance(expected, tuple)
        return (actual in expected) == (op == "IN")
    assert isinstance(actual, str)
    assert isinstance(expected, str)
    matched = _like(expected, fold="ILIKE" in op)(actual)
    return matched != op.startswith("NOT")


_ATTRIBUTE_FIELDS = {"run_name": "name", "user_id": "user"}


def reference(expr: Expr | None, run: FakeRun) -> bool:
    """The documented semantics, evaluated in Python."""
    if expr is None:
        return True
    if isinstance(expr, Not):
        return not reference(expr.operand, run)
    if isinstance(expr, And):
        return all(reference(operand, run) for operand in expr.operands)
    if isinstance(expr, Or):
        return any(reference(operand, run) for operand in expr.operands)
    kind, key = expr.identifier.kind, expr.identifier.key
    if kind == "attribute":
        actual = getattr(run, _ATTRIBUTE_FIELDS.get(key, key))
    else:
        actual = getattr(run, kind + "s").get(key)
    if expr.op == "IS NULL":
        return actual is None
    if expr.op == "IS NOT NULL":
        return actual is not None
    if actual is None or (isinstance(actual, float) and math.isnan(actual)):
        return False
    return _test(expr.op, actual, expr.value)


# LIKE patterns assembled from pieces of the stored values, so that they often match.
_PATTERNS = st.lists(
    st.sampled_from(["r", "R", "f", "F", "risk", "RISK", "ops", "%", "_", "\\%", "\\_", "'", "1"]),
    max_size=4,
).map("".join)
_NUMBERS = st.sampled_from([0, 0.3, 0.5, -1.5e-3, 7, 1e10, -1, 0.9, 1000, 1300, 2, 1])
_METRIC_KEYS = st.sampled_from(["rmse", "acc", "my metric", "absent"])
_TEXT_KEYS = st.sampled_from(["model", "depth", "team", "note", "my tag", "absent"])
_TEXT_VALUES = st.sampled_from(["rf", "RF", "risk", "Risk", "gbm", "", "10", "ops", INJECTION])
_STRING_ATTRIBUTES = st.sampled_from(["run_id", "run_name", "status", "user_id", "parent_run_id"])
_ATTRIBUTE_TEXT = st.sampled_from(["r01", "r02", "baseline", "ana", "bob", "FINISHED", "lr%1"])


def _comparisons() -> st.SearchStrategy[Comparison]:
    metric = st.builds(
        Comparison,
        st.builds(Identifier, st.just("metric"), _METRIC_KEYS),
        st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
        _NUMBERS,
    ) | st.builds(
        Comparison,
        st.builds(Identifier, st.just("metric"), _METRIC_KEYS),
        st.sampled_from(["IN", "NOT IN"]),
        st.lists(_NUMBERS, min_size=1, max_size=3).map(tuple),
    )
    text_id = st.builds(Identifier, st.sampled_from(["param", "tag"]), _TEXT_KEYS)
    text = (
        st.builds(Comparison, text_id, st.sampled_from(["=", "!="]), _TEXT_VALUES)
        | st.builds(
            Comparison,
            text_id,
            st.sampled_from(["LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"]),
            _PATTERNS,
        )
        | st.builds(
            Comparison,
            text_id,
            st.sampled_from(["IN", "NOT IN"]),
            st.lists(_TEXT_VALUES, min_size=1, max_size=3).map(tuple),
        )
    )
    nullness = st.builds(
        Comparison,
        st.builds(
            Identifier, st.sampled_from(["metric", "param", "tag"]), _TEXT_KEYS | _METRIC_KEYS
        )
        | st.builds(Identifier, st.just("attribute"), st.sampled_from(["end_time", "run_name"])),
        st.sampled_from(["IS NULL", "IS NOT NULL"]),
        st.none(),
    )
    attribute = st.builds(
        Comparison,
        st.builds(Identifier, st.just("attribute"), _STRING_ATTRIBUTES),
        st.sampled_from(["=", "!=", "LIKE", "ILIKE"]),
        _ATTRIBUTE_TEXT,
    ) | st.builds(
        Comparison,
        st.builds(Identifier, st.just("attribute"), st.sampled_from(["start_time", "end_time"])),
        st.sampled_from(["=", "!=", "<", "<=", ">", ">="]),
        _NUMBERS,
    )
    return metric | text | nullness | attribute


def _combine(children: st.SearchStrategy[Expr]) -> st.SearchStrategy[Expr]:
    return (
        st.builds(Not, children)
        | st.lists(children, min_size=2, max_size=3).map(lambda xs: And(tuple(xs)))
        | st.lists(children, min_size=2, max_size=3).map(lambda xs: Or(tuple(xs)))
    )


FILTERS = st.recursive(_comparisons(), _combine, max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expr=FILTERS)
def test_generated_filters_select_what_the_reference_semantics_select(
    db: Database, expr: Expr
) -> None:
    filter_string = format_filter(expr)
    expected = {run.run_id for run in ACTIVE if reference(parse_filter(filter_string), run)}
    assert found(db, filter_string) == expected, filter_string


def test_repeated_searches_reuse_the_parse_and_the_statement(db: Database) -> None:
    text = "metrics.rmse < 0.4 and params.model = 'rf'"
    assert parse_filter(text) is parse_filter(text)

    def build() -> object:
        return build_search_statement(experiment_ids=[1], filter_string=text, order_by=["run_id"])

    assert build() is build()
    assert found(db, text) == found(db, text) == {"r01"}


# Comparisons with extreme and odd values, for filters that must run without a database error.
_ODD_COMPARISONS = [
    "metrics.rmse > 1e308", "metrics.rmse <= -1e-308", "metrics.`my metric` IN (7, 1.5e300)",
    "params.model = ''", "params.model NOT ILIKE '%\\%%'", "tags.`é 🙂` IS NULL",
    "tags.team IN ('risk', \"ops\")", "status != 'RUNNING'", "start_time > 999999999999999999",
    "start_time < 1e300", "end_time IS NOT NULL", "run_name LIKE '_%_'", "user = 'ana'",
    "experiment_id IN (1, 2.5)", "run_id NOT IN ('r01')", "parent_run_id IS NULL",
    "artifact_uri ILIKE 'FILE:%'", "params.`x'; DROP TABLE runs; --` != 'y'",
]  # fmt: skip


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    terms=st.lists(
        st.tuples(
            st.sampled_from(["", "NOT ", "not not "]),
            st.sampled_from(_ODD_COMPARISONS),
            st.sampled_from([" AND ", " or ", ") AND (", ") OR ("]),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_odd_values_and_shapes_run_without_a_database_error(
    db: Database, terms: list[tuple[str, str, str]]
) -> None:
    text = "(" + "".join(f"{neg}{term}{glue}" for neg, term, glue in terms)[: -len(terms[-1][2])]
    text += ")"
    search(db, text, order_by=["metrics.rmse DESC", "params.model", "run_name"])
    _tables_survive(db)
