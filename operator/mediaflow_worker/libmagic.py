"""libmagic's MIME type of a file, through ctypes: the calls python-magic makes, without its cost.

`magic.from_file(path, mime=True)` loads the library twice through `ctypes.util.find_library`,
which runs `ldconfig -p` in a subprocess each time (~20 ms of a worker's start-up). This opens
the same library by its soname and makes the same calls with the same flags and parameters
(`MAGIC_MIME_TYPE`, the default database, `MAGIC_PARAM_NAME_MAX` = 64), so the answer is the same.
"""

from __future__ import annotations

import ctypes
import os

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

    def mime(self, path: str) -> str:
        os.close(os.open(path, os.O_RDONLY))  # missing/unreadable: OSError, as with python-magic
        raw = self.lib.magic_file(self.cookie, os.fsencode(path))
        if raw is None:
            if self.lib.magic_error(self.cookie) is None:
                return "application/octet-stream"  # libmagic 5.09's silent failure, as python-magic
            raise MagicError(f"libmagic failed: {self._error()}")
        return raw.decode("utf-8", "backslashreplace")


_cookie: _Cookie | None = None


def mime_type(path: str) -> str:
    """The MIME type libmagic gives the file's content (names and extensions play no part)."""
    global _cookie
    if _cookie is None:
        _cookie = _Cookie()
    return _cookie.mime(path)
