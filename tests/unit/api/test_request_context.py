"""Request ids, the request's log line and the JSON log format (issue 13 item 6)."""

from __future__ import annotations

import json
import logging
import re

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from mediaflow_api.logs import RequestContextFilter, configure_logging, formatter
from mediaflow_api.request_context import (
    MAX_REQUEST_ID_LENGTH,
    RequestContext,
    _current,
    line_level,
    new_request_id,
    request_line,
    sanitise_request_id,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "value",
    [
        "a",
        "5f0c3a2e9b8d4c1fa0e6d7b8c9d0e1f2",
        "0d9f7d7e-1c4b-4e2a-9a51-2f7e5b6c8d90",
        "Root-1.trace:span_2",
        "x" * MAX_REQUEST_ID_LENGTH,
    ],
)
def test_a_sane_client_id_is_kept(value: str) -> None:
    assert sanitise_request_id(value) == value
    assert sanitise_request_id(f"  {value} ") == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "x" * (MAX_REQUEST_ID_LENGTH + 1),
        "two words",
        'quote"d',
        "new\nline",
        "semi;colon",
        "<script>",
        "ünïcode",
        "a/b",
        "a=b",
    ],
)
def test_an_insane_client_id_is_refused(value: str | None) -> None:
    assert sanitise_request_id(value) is None


def test_new_ids_are_uuid4_hex_and_differ() -> None:
    first, second = new_request_id(), new_request_id()
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    assert first[12] == "4"  # the uuid version
    assert first != second
    assert sanitise_request_id(first) == first


def test_the_request_line_names_route_status_and_duration_not_the_query() -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/jobs/abc",
        "path_template": "/api/v1/jobs/{job_id}",
        "query_string": b"token=secret",
    }
    context = RequestContext("rid-1", user_id="u-1", status=404)
    message, fields = request_line(scope, context)  # type: ignore[arg-type]
    assert fields["request_id"] == "rid-1"
    assert fields["user_id"] == "u-1"
    assert (fields["method"], fields["route"], fields["path"]) == (
        "GET",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/abc",
    )
    assert fields["status"] == 404
    assert fields["duration_ms"] >= 0
    assert message.startswith("GET /api/v1/jobs/abc 404 ")
    assert "secret" not in message + json.dumps(fields)


def test_probes_and_scrapes_are_quiet_unless_they_fail() -> None:
    assert line_level("/metrics", 200) == logging.DEBUG
    assert line_level("/api/v1/health", 200) == logging.DEBUG
    assert line_level("/api/v1/health", 503) == logging.WARNING
    assert line_level("/api/v1/jobs", 200) == logging.INFO
    assert line_level("/api/v1/jobs", 404) == logging.INFO
    assert line_level("/api/v1/jobs", 500) == logging.WARNING


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("mediaflow_api.test", logging.INFO, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_a_json_line_has_time_level_logger_message_and_the_request() -> None:
    record = _record("hello %s", method="GET", status=200)
    record.args = ("world",)
    token = _current.set(RequestContext("rid-2", user_id="u-2"))
    try:
        RequestContextFilter().filter(record)
    finally:
        _current.reset(token)
    line = formatter("json").format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "hello world"
    assert data["level"] == "INFO"
    assert data["logger"] == "mediaflow_api.test"
    assert (data["request_id"], data["user_id"]) == ("rid-2", "u-2")
    assert (data["method"], data["status"]) == ("GET", 200)
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", data["time"])


def test_uvicorns_coloured_copy_of_the_message_is_left_out() -> None:
    record = _record("Started", color_message="\x1b[36mStarted\x1b[0m")
    RequestContextFilter().filter(record)
    assert "color_message" not in json.loads(formatter("json").format(record))


def test_outside_a_request_the_ids_are_null_and_a_records_own_id_wins() -> None:
    record = _record("starting")
    RequestContextFilter().filter(record)
    data = json.loads(formatter("json").format(record))
    assert data["request_id"] is None
    assert data["user_id"] is None
    own = _record("line", request_id="rid-3", user_id=None)
    token = _current.set(RequestContext("other"))
    try:
        RequestContextFilter().filter(own)
    finally:
        _current.reset(token)
    assert json.loads(formatter("json").format(own))["request_id"] == "rid-3"


def test_the_text_format_shows_the_request_id() -> None:
    record = _record("hello", request_id="rid-4", user_id=None)
    line = formatter("text").format(record)
    assert "[rid-4] hello" in line
    assert "INFO" in line


def test_configure_logging_routes_uvicorn_through_one_handler() -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    try:
        handler = configure_logging("json", "DEBUG")
        assert root.handlers == [handler]
        assert root.level == logging.DEBUG
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            assert logging.getLogger(name).handlers == []
            assert logging.getLogger(name).propagate
    finally:
        root.handlers[:] = before[0]
        root.setLevel(before[1])


# ------------------------------------------------------------ the header, end to end


def test_every_answer_carries_a_request_id(client: TestClient[Litestar]) -> None:
    for response in (
        client.get("/nothing-here"),  # 404 from routing, before any middleware
        client.delete("/api/v1/auth/login"),  # 405 from routing
        client.get("/docs/openapi.json"),
        client.get("/metrics"),
    ):
        assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])
    assert len({client.get("/nothing-here").headers["x-request-id"] for _ in range(3)}) == 3


def test_a_sane_client_id_is_echoed_an_insane_one_replaced(
    client: TestClient[Litestar],
) -> None:
    kept = client.get("/nothing-here", headers={"X-Request-ID": "trace-42.a"})
    assert kept.status_code == 404
    assert kept.headers["content-type"] == "application/problem+json"
    assert kept.headers["x-request-id"] == "trace-42.a"
    replaced = client.get("/nothing-here", headers={"X-Request-ID": "x" * 200})
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])


def test_each_request_logs_one_line_with_its_id(
    client: TestClient[Litestar], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="mediaflow_api.access"):
        response = client.get("/nothing-here", headers={"X-Request-ID": "one-line"})
    lines = [r for r in caplog.records if r.name == "mediaflow_api.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line.request_id == response.headers["x-request-id"] == "one-line"  # type: ignore[attr-defined]
    assert (line.method, line.path, line.route, line.status) == (  # type: ignore[attr-defined]
        "GET",
        "/nothing-here",
        None,
        404,
    )
