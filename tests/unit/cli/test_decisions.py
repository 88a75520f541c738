"""The CLI's pure decisions: exit codes, form fields and requests, file names, error text."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from mediaflow_cli.app import job_line, normalise_api_url, resolve_api_url, result_links
from mediaflow_cli.client import retry_delay
from mediaflow_cli.exitcodes import (
    ExitCode,
    exit_code_for_http,
    exit_code_for_jobs,
    exit_code_for_status,
)
from mediaflow_cli.forms import (
    FIELDS,
    Operation,
    UploadRequest,
    form_fields,
    plan_uploads,
    queued_jobs,
)
from mediaflow_cli.naming import (
    disposition_filename,
    fallback_filename,
    free_path,
    output_path,
    safe_filename,
    url_filename,
)
from mediaflow_cli.problems import api_error, describe_problem
from mediaflow_cli.ui import jobs_table, summary_lines

# --- exit codes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("completed", ExitCode.OK),
        ("failed", ExitCode.JOB_FAILED),
        ("cancelled", ExitCode.JOB_FAILED),
        ("pending", ExitCode.NOT_FINISHED),
        ("processing", ExitCode.NOT_FINISHED),
    ],
)
def test_exit_code_of_a_job(status: str, code: ExitCode) -> None:
    assert exit_code_for_status(status) is code


def test_a_failed_job_outweighs_unfinished_and_completed_ones() -> None:
    assert exit_code_for_jobs(["completed", "processing", "failed"], waited=True) == 1
    assert exit_code_for_jobs(["completed", "processing"], waited=True) == 6
    assert exit_code_for_jobs(["completed", "completed"], waited=True) == 0
    # --no-wait: queued is what was asked.
    assert exit_code_for_jobs(["pending", "pending"], waited=False) == 0


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, 3), (404, 4), (409, 4), (413, 4), (415, 4), (422, 4), (429, 4), (500, 5), (503, 5)],
)
def test_exit_code_of_an_api_error(status: int, code: int) -> None:
    assert exit_code_for_http(status) == code


def test_exit_codes_are_distinct_and_usage_is_clicks() -> None:
    assert len({int(c) for c in ExitCode}) == len(ExitCode)
    assert ExitCode.USAGE == 2  # click exits 2 on a usage error by itself


# --- form fields and requests -------------------------------------------------------


def test_options_become_the_apis_field_names_and_none_is_not_sent() -> None:
    fields = form_fields(Operation.VIDEO_CONVERT, {"to": "webm", "codec": "vp9", "crf": 30,
                                                    "preset": None})  # fmt: skip
    assert fields == {"output_format": "webm", "codec": "vp9", "crf": "30"}
    assert form_fields(Operation.VIDEO_TRIM, {"start": "00:00:01", "end": "00:00:02.5"}) == {
        "start_time": "00:00:01",
        "end_time": "00:00:02.5",
    }
    assert form_fields(Operation.VIDEO_THUMBNAIL, {"at": "00:00:03", "to": "png"}) == {
        "timestamp": "00:00:03",
        "format": "png",
    }
    assert form_fields(Operation.IMAGE_FORMAT, {"to": "avif", "quality": None}) == {
        "output_format": "avif"
    }


def test_booleans_are_sent_as_the_api_reads_them() -> None:
    assert form_fields(Operation.IMAGE_WEBP, {"lossless": True, "quality": None}) == {
        "lossless": "true"
    }
    assert form_fields(Operation.VIDEO_RESIZE, {"keep_aspect": False, "width": 320}) == {
        "keep_aspect": "false",
        "width": "320",
    }
    assert form_fields(Operation.VIDEO_ROTATE, {"degrees": 180, "no_transcode": True}) == {
        "degrees": "180",
        "no_transcode": "true",
    }


def test_an_option_the_operation_does_not_take_is_an_error_not_dropped() -> None:
    with pytest.raises(KeyError):
        form_fields(Operation.IMAGE_AVIF, {"lossless": True})


def test_every_field_name_is_one_the_api_documents() -> None:
    documented = {
        "quality", "lossless", "output_format", "width", "height", "fit", "codec", "crf",
        "preset", "degrees", "no_transcode", "keep_aspect", "start_time", "end_time",
        "timestamp", "format",
    }  # fmt: skip
    used = {field for names in FIELDS.values() for field in names.values()}
    assert used <= documented
    assert set(FIELDS) == set(Operation)


def test_one_file_goes_to_the_single_endpoint() -> None:
    [request] = plan_uploads(Operation.IMAGE_WEBP, [Path("a.jpg")])
    assert request == UploadRequest("/image/convert/webp", "file", (Path("a.jpg"),))


def test_many_files_go_to_the_batch_endpoint_twenty_at_a_time() -> None:
    files = [Path(f"{i}.jpg") for i in range(45)]
    requests = plan_uploads(Operation.IMAGE_FORMAT, files)
    assert [r.path for r in requests] == ["/image/batch/convert/format"] * 3
    assert [len(r.files) for r in requests] == [20, 20, 5]
    assert all(r.file_field == "files" for r in requests)
    assert [f for r in requests for f in r.files] == files


def test_operations_without_a_batch_endpoint_send_one_request_per_file() -> None:
    requests = plan_uploads(Operation.IMAGE_RESIZE, [Path("a.png"), Path("b.png")])
    assert [(r.path, r.file_field, r.files) for r in requests] == [
        ("/image/resize", "file", (Path("a.png"),)),
        ("/image/resize", "file", (Path("b.png"),)),
    ]


def test_a_batch_answer_is_matched_to_the_files_in_order() -> None:
    request = UploadRequest("/image/batch/convert/webp", "files", (Path("a"), Path("b")))
    data = {
        "jobs": [
            {"job_id": "1", "filename": "a", "status": "pending"},
            {"job_id": "2", "filename": "b", "status": "pending"},
        ],
        "total": 2,
    }
    assert [(j["job_id"], j["file"]) for j in queued_jobs(request, data)] == [
        ("1", Path("a")),
        ("2", Path("b")),
    ]
    single = UploadRequest("/video/trim", "file", (Path("c.mp4"),))
    assert queued_jobs(single, {"job_id": "3", "status": "pending"}) == [
        {"job_id": "3", "status": "pending", "file": Path("c.mp4")}
    ]


# --- output files -------------------------------------------------------------------

# The shape of a result URL the API hands out (MinIO presigned, response-content-disposition).
RESULT_URL = (
    "http://127.0.0.1:9000/mediaflow/mediaflow/results/abc/output?"
    "response-content-disposition=attachment%3B%20filename%3D%22holiday%20photo.webp%22"
    "&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00"
)


def test_the_result_is_named_as_the_api_names_it() -> None:
    assert url_filename(RESULT_URL) == "holiday photo.webp"
    assert url_filename("http://h/b/k?X-Amz-Signature=1") is None
    assert disposition_filename('attachment; filename="a b.mp4"') == "a b.mp4"
    assert disposition_filename(None) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("photo.webp", "photo.webp"),
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        (".bashrc", "bashrc"),
        ("a\nb.png", "a_b.png"),
        ("", "fallback.bin"),
        (None, "fallback.bin"),
        ("..", "fallback.bin"),
        ("/", "fallback.bin"),
    ],
)
def test_a_result_name_is_a_plain_file_name(name: str | None, expected: str) -> None:
    assert safe_filename(name, "fallback.bin") == expected


def test_a_url_without_a_name_gives_the_job_id_and_the_types_extension() -> None:
    assert fallback_filename("j1", "image/webp") == "j1.webp"
    assert fallback_filename("j1", "video/mp4; charset=binary") == "j1.mp4"
    assert fallback_filename("j1", None) == "j1.bin"


def test_an_existing_file_is_never_overwritten_in_a_folder() -> None:
    taken = {Path("out/photo.jpg"), Path("out/photo-1.jpg")}
    assert free_path(Path("out"), "photo.jpg", taken.__contains__) == Path("out/photo-2.jpg")
    assert free_path(Path("out"), "clip.mp4", taken.__contains__) == Path("out/clip.mp4")


def test_output_path_of_a_folder_a_file_or_nothing() -> None:
    folders = {Path("results")}
    existing = {Path("photo.webp"), Path("results/photo.webp")}

    def where(target: Path | None) -> Path:
        return output_path(target, "photo.webp", is_dir=folders.__contains__,
                           exists=existing.__contains__)  # fmt: skip

    assert where(None) == Path("photo-1.webp")
    assert where(Path("results")) == Path("results/photo-1.webp")
    # A file path the user chose is written as given.
    assert where(Path("mine.webp")) == Path("mine.webp")


# --- error text ---------------------------------------------------------------------


def test_a_problem_is_told_with_its_detail_and_each_field() -> None:
    problem = {
        "type": "urn:mediaflow:problem:invalid-request",
        "title": "Invalid request",
        "status": 422,
        "detail": "Some fields are invalid.",
        "errors": [
            {"field": "quality", "source": "body", "message": "must be at most 100"},
            {"message": "end_time must be after start_time"},
        ],
    }
    assert describe_problem(422, problem) == (
        "Invalid request: Some fields are invalid. (HTTP 422)\n"
        "  quality: must be at most 100\n"
        "  end_time must be after start_time"
    )
    # As the API answers it: the detail already names the field.
    repeated = {
        "type": "urn:mediaflow:problem:invalid-request",
        "title": "Your request is not valid",
        "status": 422,
        "detail": "quality: Input should be less than or equal to 100",
        "errors": [
            {"field": "quality", "source": "body", "message": "Input should be less than or "
             "equal to 100"}
        ],
    }  # fmt: skip
    assert describe_problem(422, repeated) == (
        "Your request is not valid: quality: Input should be less than or equal to 100 (HTTP 422)"
    )
    error = api_error(422, problem)
    assert error.exit_code == ExitCode.API
    assert error.problem == problem


def test_a_body_that_is_not_a_problem_gives_the_status() -> None:
    assert describe_problem(502, "<html>bad gateway</html>", "Bad Gateway") == (
        "HTTP 502 Bad Gateway"
    )
    assert api_error(502, None, "Bad Gateway").exit_code == ExitCode.UNAVAILABLE
    assert describe_problem(404, {"title": "Not Found", "detail": "Not Found"}) == (
        "Not Found (HTTP 404)"
    )


# --- retries and the API address --------------------------------------------------


def test_only_short_announced_waits_are_retried() -> None:
    assert retry_delay(429, "3", 1) == 3.0
    assert retry_delay(503, "0", 1) == 0.0
    assert retry_delay(429, "120", 1) is None  # too long: tell the user
    assert retry_delay(429, None, 1) is None
    assert retry_delay(429, "Wed, 21 Oct 2026 07:28:00 GMT", 1) is None
    assert retry_delay(422, "3", 1) is None
    assert retry_delay(429, "3", 4) is None  # gave up after a few attempts


def test_the_api_address() -> None:
    assert normalise_api_url("http://h:8000/") == "http://h:8000"
    assert normalise_api_url("http://h:8000/api/v1/") == "http://h:8000"
    assert resolve_api_url("http://a/", "http://b") == "http://a"
    assert resolve_api_url(None, "http://b") == "http://b"
    assert resolve_api_url("  ", None) is None


# --- what is shown ------------------------------------------------------------------


def test_a_renditions_job_offers_every_rendition_and_others_their_result() -> None:
    assert result_links({"result_url": "u", "renditions": None}) == ["u"]
    assert result_links({"result_url": "a", "renditions": [{"url": "a"}, {"url": "b"}]}) == [
        "a",
        "b",
    ]
    assert result_links({"result_url": None}) == []


def test_the_lines_of_a_job() -> None:
    assert job_line({"id": "j", "status": "processing", "progress": 40}) == "job j processing 40%"
    assert job_line({"id": "j", "status": "failed", "error": "moov atom not found"}) == (
        "job j failed: moov atom not found"
    )
    assert job_line({"id": "j", "status": "completed"}, ["out/a.webp"]) == (
        "job j completed -> out/a.webp"
    )
    assert summary_lines(
        [{"file": "a.jpg", "job_id": "j", "status": "completed", "saved": ["a.webp"]}]
    ) == ["a.jpg: job j completed -> a.webp"]


def test_the_jobs_table_says_the_page_and_total() -> None:
    page = {
        "items": [
            {
                "id": "0b5c",
                "job_type": "video_trim",
                "status": "failed",
                "progress": 0,
                "created_at": "2026-12-03T06:00:00Z",
                "error": "end [1] after the clip",
            }
        ],
        "total": 41,
        "page": 2,
        "page_size": 20,
    }
    console = Console(record=True, width=160)
    console.print(jobs_table(page))
    text = console.export_text()
    assert "page 2 of 3, 41 jobs" in text
    assert "2026-12-03 06:00:00" in text
    assert "end [1] after the clip" in text  # markup in an error is shown as text
