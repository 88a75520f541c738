"""The worker's settings, read from `MEDIAFLOW_*` environment variables and, for the
presigned URLs, from the files of the pod's Secret volume."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from mediaflow_core import constants as c

from .errors import WorkerError
from .probe import Limits


class ConfigError(WorkerError):
    """The pod was started with a broken environment (an operator bug, not the user's)."""

    exit_code = c.EXIT_CONFIG


class Settings(NamedTuple):
    """Everything the worker reads from its environment."""

    operation: str
    options: str
    input_url: str
    output_url: str
    work_dir: str = "/work"
    # An ImageConvert with renditions: (rendition name, presigned PUT URL) for each.
    output_urls: tuple[tuple[str, str], ...] = ()
    termination_log: str = "/dev/termination-log"
    threads: int = 1
    fetch_timeout: float = 900.0
    # Longest an image tool may run on one input (a hang is final for the input).
    tool_timeout: float = 1800.0
    verify_decode: bool = True
    input_public_only: bool = False
    limits: Limits = Limits()


def _int(env: Mapping[str, str], name: str, default: int, low: int = 1) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, not {raw!r}") from None
    if value < low:
        raise ConfigError(f"{name} must be at least {low}")
    return value


def _threads(env: Mapping[str, str]) -> int:
    """Tool threads: a number, or `auto` (a pod without a CPU limit): the CPUs this process
    may run on, at most 16."""
    if env.get(c.ENV_THREADS, "").strip() == c.THREADS_AUTO:
        import os

        return max(1, min(16, len(os.sched_getaffinity(0))))
    return _int(env, c.ENV_THREADS, 1)


def _flag(env: Mapping[str, str], name: str, default: str) -> bool:
    """On unless "0", "false" or "no" (so a typo never turns a guard off)."""
    return env.get(name, default).strip().lower() not in ("0", "false", "no")


def _url(directory: str, name: str) -> str:
    path = Path(directory) / name
    try:
        url = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(f"the worker cannot read {path}: {error.strerror}") from None
    if not url:
        raise ConfigError(f"{path} is empty")
    return url


def _rendition_urls(directory: str) -> tuple[tuple[str, str], ...]:
    """The files `output-url-<name>` of the URL folder (a Secret volume also holds `..data`
    and a timestamped folder: only the prefix counts), sorted by name."""
    try:
        names = sorted(
            p.name
            for p in Path(directory).iterdir()
            if p.name.startswith(c.RENDITION_URL_FILE_PREFIX)
        )
    except OSError:
        return ()
    return tuple(
        (name.removeprefix(c.RENDITION_URL_FILE_PREFIX), _url(directory, name)) for name in names
    )


def settings_from_env(env: Mapping[str, str], *, urls: bool = True) -> Settings:
    """Settings from an environment mapping, and the URLs from the files of
    `MEDIAFLOW_URL_DIR`; ConfigError names the broken variable or file."""
    if not env.get(c.ENV_OPERATION):
        raise ConfigError(f"the worker needs {c.ENV_OPERATION} in its environment")
    url_dir = env.get(c.ENV_URL_DIR) or c.URL_DIR
    defaults = Limits()
    limits = Limits(
        max_input_bytes=_int(env, c.ENV_MAX_INPUT_BYTES, defaults.max_input_bytes),
        max_pixels=_int(env, "MEDIAFLOW_MAX_PIXELS", defaults.max_pixels),
        max_frames=_int(env, "MEDIAFLOW_MAX_FRAMES", defaults.max_frames),
        max_duration_seconds=_int(
            env, "MEDIAFLOW_MAX_DURATION_SECONDS", int(defaults.max_duration_seconds)
        ),
    )
    # With renditions the Secret holds `output-url-<name>` files instead of `output-url`.
    output_urls = _rendition_urls(url_dir) if urls else ()
    return Settings(
        operation=env[c.ENV_OPERATION],
        options=env.get(c.ENV_OPTIONS, "") or "{}",
        # A warm pod (urls=False) gets its URLs per item, from its mailbox.
        input_url=_url(url_dir, c.INPUT_URL_FILE) if urls else "",
        output_url=_url(url_dir, c.OUTPUT_URL_FILE) if urls and not output_urls else "",
        output_urls=output_urls,
        work_dir=env.get(c.ENV_WORK_DIR) or c.WORK_DIR,
        termination_log=env.get("MEDIAFLOW_TERMINATION_LOG") or "/dev/termination-log",
        threads=_threads(env),
        fetch_timeout=_int(env, "MEDIAFLOW_FETCH_TIMEOUT_SECONDS", 900),
        tool_timeout=_int(env, "MEDIAFLOW_TOOL_TIMEOUT_SECONDS", 1800),
        limits=limits,
        verify_decode=_flag(env, c.ENV_VERIFY_DECODE, "1"),
        input_public_only=_flag(env, c.ENV_INPUT_PUBLIC_ONLY, "0"),
    )
