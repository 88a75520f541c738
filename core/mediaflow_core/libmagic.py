"""libmagic's MIME type of a file or buffer, through ctypes: the calls python-magic makes, without
its cost. The worker and the API's upload sniffing both use it, so both judge bytes alike.

`magic.from_file(path, mime=True)` loads the library twice through `ctypes.util.find_library`,
which runs `ldconfig -p` in a subprocess each time (~20 ms of a worker's start-up). This opens
the same library by its soname and makes the same calls with the same flags and parameters
(`MAGIC_MIME_TYPE`, the default database, `MAGIC_PARAM_NAME_MAX` = 64), so the answer is the same.

Kept, rather than python-magic, because it measurably matters where the worker starts
(bench/libmagic_binding.py, 2026-12-02, this 2-core machine): the first answer in a fresh
process costs 7.7 ms here against 34.4 ms with python-magic (its import), on top of a 14 ms
interpreter start, once in every pod; per call both take the same (4 KiB buffer 17.7 against
17.4 us, a file 29 against 36 us). tests/unit/worker/test_fastpath.py checks both answer alike.
"""

from __future__ import annotations

import ctypes
import os
import threading  # already loaded by subprocess: free

MAGIC_MIME_TYPE = 0x10
MAGIC_PARAM_NAME_MAX = 1  # python-magic raises it to 64 (its issue 190); so do we
_SONAMES = ("libmagic.so.1", "libmagic.1.dylib")


class MagicError(RuntimeError):
    """libmagic could not be loaded or failed on a file."""


class _Cookie:
    def __init__(self) -> None:
        lib = None
        for name in _SONAMES:
            try:
                lib = ctypes.CDLL(name)
                break
            except OSError:
                continue
        if lib is None:  # an unusual layout: the slow search python-magic does
            from ctypes.util import find_library

            found = find_library("magic")
            if not found:
                raise MagicError("libmagic is not installed")
            lib = ctypes.CDLL(found)
        lib.magic_open.restype = ctypes.c_void_p
        lib.magic_open.argtypes = [ctypes.c_int]
        lib.magic_load.restype = ctypes.c_int
        lib.magic_load.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.magic_file.restype = ctypes.c_char_p
        lib.magic_file.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.magic_buffer.restype = ctypes.c_char_p
        lib.magic_buffer.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
        lib.magic_error.restype = ctypes.c_char_p
        lib.magic_error.argtypes = [ctypes.c_void_p]
        self.lib = lib
        self.cookie = lib.magic_open(MAGIC_MIME_TYPE)
        if not self.cookie:
            raise MagicError("libmagic could not be initialised")
        if lib.magic_load(self.cookie, None) == -1:
            raise MagicError(f"libmagic could not load its database: {self._error()}")
        if hasattr(lib, "magic_setparam"):
            lib.magic_setparam.restype = ctypes.c_int
            lib.magic_setparam.argtypes = [
                ctypes.c_void_p,
                ctypes.c_int,
                ctypes.POINTER(ctypes.c_size_t),
            ]
            lib.magic_setparam(self.cookie, MAGIC_PARAM_NAME_MAX, ctypes.byref(ctypes.c_size_t(64)))

    def _error(self) -> str:
        raw = self.lib.magic_error(self.cookie)
        return raw.decode("utf-8", "backslashreplace") if raw else "unknown error"

    def _answer(self, raw: bytes | None) -> str:
        if raw is None:
            if self.lib.magic_error(self.cookie) is None:
                return "application/octet-stream"  # libmagic 5.09's silent failure, as python-magic
            raise MagicError(f"libmagic failed: {self._error()}")
        return raw.decode("utf-8", "backslashreplace")

    def mime(self, path: str) -> str:
        os.close(os.open(path, os.O_RDONLY))  # missing/unreadable: OSError, as with python-magic
        return self._answer(self.lib.magic_file(self.cookie, os.fsencode(path)))

    def mime_of_buffer(self, data: bytes) -> str:
        return self._answer(self.lib.magic_buffer(self.cookie, data, len(data)))


_cookie: _Cookie | None = None
# A cookie is not thread-safe (its error state and buffers are shared); the API sniffs uploads
# from several threads.
_lock = threading.Lock()


def _the_cookie() -> _Cookie:
    global _cookie
    if _cookie is None:
        _cookie = _Cookie()
    return _cookie


def mime_type(path: str) -> str:
    """The MIME type libmagic gives the file's content (names and extensions play no part)."""
    with _lock:
        return _the_cookie().mime(path)


def mime_type_of_buffer(data: bytes) -> str:
    """The MIME type libmagic gives these bytes (e.g. the head of an upload)."""
    with _lock:
        return _the_cookie().mime_of_buffer(data)
