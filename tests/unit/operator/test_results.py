"""Download file names of results: every content type the worker produces gets its extension."""

import pytest

from mediaflow_core.naming import EXTENSIONS, download_filename
from mediaflow_worker.commands import CONTENT_TYPES


@pytest.mark.parametrize(("fmt", "content_type"), sorted(CONTENT_TYPES.items()))
def test_every_worker_output_type_has_its_extension(fmt: str, content_type: str) -> None:
    extension = EXTENSIONS[content_type]
    assert extension == {"jpeg": "jpg", "tiff": "tif"}.get(fmt, fmt)
    assert download_filename("holiday photo", content_type) == f"holiday photo.{extension}"


def test_file_names_are_safe_in_a_quoted_content_disposition() -> None:
    assert (
        download_filename('a"b\r\n/../c', "image/webp") == "a_b_.._c.webp"
    )  # no quote, no CR/LF, no slash
    assert download_filename("...", None) == "result.bin"
    assert len(download_filename("x" * 500, "video/mp4")) == 104
