"""Renditions: one decode and an encode per rendition, against a plan per rendition.

    uv run python bench/renditions.py [--rounds 3] [--size 1920x1080]

Six renditions (WebP and AVIF at 320, 640 and 1280 wide) of one noisy photo-like JPEG, one
thread, the tools only (no fetch, sniff, verification or upload): the renditions plan
(planner.plan of ImageRenditionsOptions: ffmpeg decodes once to a PNG frame per size, then
cwebp/avifenc encode each) against six ImageResize plans of the same outputs (cwebp's own
rescaler from the JPEG for WebP, ffmpeg then avifenc for AVIF: what six jobs would run).
Median of `--rounds`. Measured 2026-12-02 on the shared 2-core machine (load ~0.8),
1920x1080, 5 rounds: one decode 1.64 s, six plans 1.98 s (-17 %); the first round of a run
is noisy (one round once gave 2.42 against 2.14 s).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from mediaflow_core.media import IMAGE_TYPES
from mediaflow_core.options import OperationOptions, parse_options
from mediaflow_worker.headers import ImageHeader
from mediaflow_worker.planner import ImageSource, Plan, plan
from mediaflow_worker.probe import Limits

WIDTHS = (320, 640, 1280)
FORMATS = ("webp", "avif")


def run(job_plan: Plan, work: Path) -> float:
    started = time.monotonic()
    for step in job_plan.steps:
        subprocess.run(list(step.args), check=True, capture_output=True, cwd=work)
    return time.monotonic() - started


def planned(options: OperationOptions, photo: Path, size: tuple[int, int], work: Path) -> Plan:
    work.mkdir()
    shutil.copy(photo, work / "input")
    header = ImageHeader(size[0], size[1], 1, 1, False)
    source = ImageSource(work / "input", IMAGE_TYPES["image/jpeg"], header)
    return plan(options, source, Limits(), 1, work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", default="1920x1080")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    root = Path(tempfile.mkdtemp(prefix="bench-renditions-"))
    try:
        photo = root / "photo.jpg"
        subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"testsrc2=s={args.size}",
             "-vf", "noise=alls=20:allf=t", "-frames:v", "1", "-q:v", "3", str(photo)],
            check=True,
        )  # fmt: skip
        items = [{"name": f"w{w}-{f}", "format": f, "width": w} for f in FORMATS for w in WIDTHS]
        renditions = parse_options("ImageConvert", {"renditions": items})
        once, separate = [], []
        for n in range(args.rounds):
            once.append(
                run(planned(renditions, photo, (width, height), root / f"r{n}"), root / f"r{n}")
            )
            total = 0.0
            for i, item in enumerate(items):
                options = parse_options(
                    "ImageResize", {"width": item["width"], "format": item["format"]}
                )
                work = root / f"s{n}-{i}"
                total += run(planned(options, photo, (width, height), work), work)
            separate.append(total)
        print(f"one decode, {len(items)} renditions: median {statistics.median(once):.3f} s")
        print(f"{len(items)} ImageResize plans:       median {statistics.median(separate):.3f} s")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
