"""libmagic from Python: mediaflow_core.libmagic against python-magic's module functions.

Until issue 12 mediaflow_core.libmagic was a ctypes binding of its own (7.7 ms to the first
answer against python-magic's 34.4 ms, 2026-12-02); it now wraps python-magic (one binding),
so "ours" measures that wrapper (one Magic object behind a lock).

    uv run python bench/libmagic_binding.py [--rounds 30] [--calls 2000]

Both ask libmagic the same question (MIME type, default database). Measured:

- first answer in a fresh interpreter (import + loading libmagic and its database + one call on
  a file), as the worker pays it once per pod, minus a bare interpreter's start; median of
  `--rounds` processes, run alternately;
- per call, in one process, on a 4 KiB buffer (the API sniffs the head of each upload) and on a
  file (the worker sniffs its input and checks its output); median of `--calls` calls.

The input is a small PNG made with ffmpeg (libmagic reads only the head of any file).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIRST_CALL = {
    "ours": "from mediaflow_core.libmagic import mime_type; mime_type({path!r})",
    "python-magic": "import magic; magic.from_file({path!r}, mime=True)",
    "bare": "pass",
}


def fresh_process_seconds(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def per_call_seconds(call: Callable[[Any], str], argument: Any, calls: int) -> float:
    call(argument)  # load outside the measurement
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        call(argument)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=30, help="fresh processes per binding")
    parser.add_argument("--calls", type=int, default=2000, help="calls per measurement")
    args = parser.parse_args()

    import magic

    from mediaflow_core.libmagic import mime_type, mime_type_of_buffer

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "photo.png")
        make_png = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x480"]
        subprocess.run([*make_png, "-frames:v", "1", path], check=True)
        head = Path(path).read_bytes()[:4096]
        assert mime_type(path) == magic.from_file(path, mime=True) == "image/png"
        assert mime_type_of_buffer(head) == magic.from_buffer(head, mime=True) == "image/png"

        first: dict[str, list[float]] = {name: [] for name in FIRST_CALL}
        for _ in range(args.rounds):
            for name, code in FIRST_CALL.items():
                first[name].append(fresh_process_seconds(code.format(path=path)))
        bare = statistics.median(first["bare"])
        print(f"interpreter start alone: {bare * 1000:.1f} ms (median of {args.rounds})")
        print("first answer in a fresh process, beyond the interpreter's start:")
        for name in ("ours", "python-magic"):
            print(f"  {name:13} {(statistics.median(first[name]) - bare) * 1000:6.1f} ms")

        print(f"per call (median of {args.calls}):")
        rows = {
            "ours": (mime_type_of_buffer, mime_type),
            "python-magic": (
                lambda data: magic.from_buffer(data, mime=True),
                lambda name: magic.from_file(name, mime=True),
            ),
        }
        for name, (on_buffer, on_file) in rows.items():
            buffer_us = per_call_seconds(on_buffer, head, args.calls) * 1e6
            file_us = per_call_seconds(on_file, path, args.calls) * 1e6
            print(f"  {name:13} 4 KiB buffer {buffer_us:7.1f} us   file {file_us:7.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
