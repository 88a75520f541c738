"""libmagic's MIME type of a file or buffer, through python-magic (the libmagic binding the
design names), for the worker and the API's upload sniffing alike, so both judge bytes alike.

One `magic.Magic(mime=True)` per process (python-magic sets `MAGIC_PARAM_NAME_MAX` to 64, its
issue 190), behind a lock: a libmagic cookie is not thread-safe, and the API sniffs uploads
from several threads and a warm worker pod converts items in several.

Until issue 12 the project kept its own ctypes binding, because python-magic's import and
library search (`ctypes.util.find_library`, which runs `ldconfig -p`) cost ~27 ms more at the
start of every one-shot pod (bench/libmagic_binding.py: 34.4 against 7.7 ms). Warm pods pay
that once for many items, and per call both bindings take the same (~18 us on a 4 KiB
buffer, ~30 us on a file), so one binding, the well-kept one, is kept.
"""

from __future__ import annotations

import threading
from typing import Any


class MagicError(RuntimeError):
    """libmagic could not be loaded or failed on a file."""


_magic: Any = None
_lock = threading.Lock()


def _the_magic() -> Any:
    global _magic
    if _magic is None:
        try:
            import magic
        except ImportError as error:  # python-magic raises ImportError without libmagic
            raise MagicError(f"libmagic is not available: {error}") from None
        _magic = magic.Magic(mime=True)
    return _magic


def mime_type(path: str) -> str:
    """The MIME type libmagic gives the file's content (names and extensions play no part).
    A missing or unreadable file raises OSError."""
    with _lock:
        return _the_magic().from_file(path)


def mime_type_of_buffer(data: bytes) -> str:
    """The MIME type libmagic gives these bytes (e.g. the head of an upload)."""
    with _lock:
        return _the_magic().from_buffer(data)
