"""Writing a file so a reader never sees half of it: write a temporary file beside it, rename.

Used by every writer of user-visible files (MIDI, npy, npz, png), so an interrupted run leaves
either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from musegan_live.errors import DataFileError


def _umask_mode() -> int:
    """The mode an ordinary ``open(path, 'w')`` would give a new file (0o666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(
    path: str | os.PathLike,
    write: Callable[[IO[bytes]], None] | None = None,
    *,
    save_to_path: Callable[[str], None] | None = None,
    tmp_suffix: str | None = None,
) -> None:
    """Write ``path`` through ``write(file)`` or ``save_to_path(tmp_path)``, then rename onto it.

    Parent folders are created. ``tmp_suffix`` is the temporary file's extension (some writers,
    like ``np.savez``, insist on one); by default the target's. Raises :class:`DataFileError` when
    the folder or disk refuses; the temporary file is removed on any failure.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        suffix = ".partial" + (target.suffix if tmp_suffix is None else tmp_suffix)
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=suffix)
    except OSError as err:
        raise DataFileError(
            f"{target}: cannot write here ({err.strerror}); choose a writable folder"
        ) from err
    try:
        if save_to_path is not None:
            os.close(fd)
            save_to_path(tmp_name)
        else:
            assert write is not None, "give write or save_to_path"
            with os.fdopen(fd, "wb") as f:
                write(f)
        os.chmod(tmp_name, _umask_mode())  # mkstemp makes 0600; users expect ordinary files
        os.replace(tmp_name, target)
    except OSError as err:
        Path(tmp_name).unlink(missing_ok=True)
        raise DataFileError(
            f"{target}: cannot write ({err.strerror}); check the disk and the path"
        ) from err
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
