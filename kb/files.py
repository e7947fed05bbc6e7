"""Files: writing so that a crash never leaves a half-written one in place, and names taken from
outside (an upload) made safe to use."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Callable, IO


def atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Call `write(f)` on a temporary file beside `path`, flush it to disk, then rename it over
    `path` in one step: readers see the old file or the new one, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def safe_name(name: str) -> str:
    """The file name only, never a path: '../../etc/passwd' -> 'passwd', 'C:\\\\docs\\\\faq.csv' -> 'faq.csv'.
    '' when nothing usable is left."""
    base = PurePosixPath(str(name).replace("\\", "/")).name.strip()
    return "" if base in ("", ".", "..") or "\x00" in base else base
