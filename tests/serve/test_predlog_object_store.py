"""The prediction log on an object store: the same Hive layout, published to S3 (moto's real
S3 HTTP API on 127.0.0.1), with the spool kept on local disk for crash recovery."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from loopml.serve import recover
from loopml.serve.logfiles import LogLocation

BUCKET = "loopml-logs"


@pytest.fixture
def s3_env(moto_s3: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Credentials and endpoint the way an operator sets them for MinIO or Ceph."""
    moto_s3.create_bucket(BUCKET)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_s3.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    return str(moto_s3.endpoint)


def _s3_table(url: str, kind: str) -> Any:
    location = LogLocation(url)
    dataset = location.dataset(kind)
    assert dataset is not None, f"no {kind} files under {url}"
    return dataset.to_table()


def test_predictions_and_feedback_are_published_to_s3(
    s3_env: str, make_client: Any, tmp_path: Path
) -> None:
    url = f"s3://{BUCKET}/run-{tmp_path.name}/logs"
    client = make_client("linear", log_dir=url)
    ids = [
        client.post("/predict", json={"instances": [[float(i)], [2.0]]}).json()["request_id"]
        for i in range(5)
    ]
    assert client.post("/feedback", json={"request_id": ids[0], "label": 1.5}).status_code == 200
    client.__exit__(None, None, None)

    files = LogLocation(url).files("predictions")
    assert files
    assert all("/predictions/model=linear/date=" in f for f in files)
    predictions = _s3_table(url, "predictions")
    assert predictions.num_rows == 10
    assert sorted(set(predictions["request_id"].to_pylist())) == sorted(ids)
    assert predictions["prediction"].to_pylist()[:2] == pytest.approx([0.0, 4.0])
    feedback = _s3_table(url, "feedback")
    assert feedback["label_value"].to_pylist() == [1.5]
    # Nothing was written next to the working directory under a mangled "s3:" folder.
    assert not Path("s3:").exists()
    # The spool stayed on local disk and is gone after a clean shutdown.
    spool = LogLocation(url).default_spool(tmp_path)
    assert not list(spool.glob("*/*.arrows"))


def test_feedback_finds_ids_published_to_s3_by_an_earlier_server(
    s3_env: str, make_client: Any, tmp_path: Path
) -> None:
    url = f"s3://{BUCKET}/earlier-{tmp_path.name}/logs"
    first = make_client("linear", log_dir=url)
    request_id = first.post("/predict", json={"instances": [[1.0]]}).json()["request_id"]
    first.__exit__(None, None, None)
    later = make_client("linear", log_dir=url)
    answer = later.post("/feedback", json={"request_id": request_id, "label": 2.0})
    assert answer.status_code == 200, answer.text
    unknown = later.post("/feedback", json={"request_id": "never-served", "label": 2.0})
    assert unknown.status_code == 404


def test_a_spool_left_by_a_killed_server_is_recovered_to_s3(s3_env: str, tmp_path: Path) -> None:
    """What a killed server spooled locally reaches the bucket when the next one starts."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.ipc

    url = f"s3://{BUCKET}/killed-{tmp_path.name}/logs"
    spool = tmp_path / "spool"
    dead = spool / "4242-1-1"
    dead.mkdir(parents=True)
    (dead / ".lock").touch()  # nobody holds it: its process is gone
    batch = pa.record_batch(
        {
            "request_id": pa.array(["a", "b"]),
            "row": pa.array(np.zeros(2, np.int32)),
            "prediction": pa.array([1.0, 2.0]),
        }
    )
    with pa.OSFile(str(dead / "predictions~linear~1~2026-11-27.arrows"), "wb") as sink:
        writer = pa.ipc.new_stream(sink, batch.schema)
        writer.write_batch(batch)
        # no close: a torn stream, as kill -9 leaves it
    assert recover(url, spool) == 2
    assert _s3_table(url, "predictions")["request_id"].to_pylist() == ["a", "b"]
    assert not dead.exists()
    assert recover(url, spool) == 0


def test_a_location_that_cannot_be_opened_is_a_clear_error() -> None:
    from loopml.errors import ConfigError

    with pytest.raises(ConfigError, match="cannot open the prediction log location"):
        LogLocation("nosuchscheme://bucket/logs")


def test_a_bucket_that_cannot_be_written_stops_the_server_before_it_serves(
    s3_env: str, make_client: Any
) -> None:
    from loopml.errors import ConfigError

    with pytest.raises(
        ConfigError, match="cannot write the prediction log to 's3://no-such-bucket"
    ):
        make_client("linear", log_dir="s3://no-such-bucket/logs")
