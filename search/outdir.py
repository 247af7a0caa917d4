"""An output directory that is checked before the work and replaced atomically after it.

:meth:`OutputDir.prepare` runs before any search: ``--out`` must be a new folder, an empty one, or a
previous result (holding ``result.json``, replaced only with ``force``); its parent is created and
must be writable, which is proven by creating the staging folder there (a hidden sibling
``.NAME.tmp-PID-XXXX``). The results are written into the staging folder; :meth:`OutputDir.commit`
then swaps it with ``--out`` in one ``renameat2(RENAME_EXCHANGE)`` call on Linux (two renames
elsewhere, with the old folder parked at ``.NAME.old-XXXX`` in between) and deletes the old
contents, so a run killed at any moment leaves the old result or the new one, never a mix. A run
killed before the commit (``kill -9``: no handler runs) leaves its hidden staging folder behind; it
is never read, and the next run with the same ``--out`` deletes it (:func:`reclaim_stale`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import tempfile
from pathlib import Path

from formulation.specs.types import SpecError

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths with Linux ``renameat2``; False where that is not available."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    done = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return done == 0


def _alive(pid: int) -> bool:
    """Whether a process ``pid`` exists (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def reclaim_stale(out: Path) -> list[Path]:
    """Delete the hidden folders that killed runs left beside ``out``: staging folders
    ``.NAME.tmp-PID-XXXX`` and parked old results ``.NAME.old-PID-XXXX`` whose process ``PID`` no
    longer exists (a live run's folders are left alone). Returns what was deleted."""
    gone = []
    parent = out.resolve().parent
    for kind in ("tmp", "old"):
        for path in parent.glob(f".{out.name}.{kind}-*-*"):
            pid = path.name[len(f".{out.name}.{kind}-"):].split("-", 1)[0]
            if path.is_dir() and not path.is_symlink() and pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)
                gone.append(path)
    return gone


class OutputDir:
    """``--out`` of one run: :meth:`prepare` before the work, write into :attr:`staging`, then :meth:`commit`."""

    def __init__(self, path: str | Path, force: bool, marker: str = "result.json", flag: str = "--out"):
        self.path = Path(path)
        self.force = force
        self.marker = marker
        self.flag = flag
        self.staging: Path | None = None

    def _fail(self, why: str) -> SpecError:
        return SpecError(f"{self.flag} = {str(self.path)[:200]!r}: {why}")

    def prepare(self) -> Path:
        """Check the folder and create the staging folder next to it; return the staging folder."""
        out = self.path
        if out.exists() or out.is_symlink():
            if not out.is_dir():
                raise self._fail("exists and is not a directory")
            if out.resolve() in (Path.cwd().resolve(), *Path.cwd().resolve().parents):
                raise self._fail("is the current directory or one of its parents; name a folder for the result")
            entries = list(out.iterdir())
            if (out / self.marker).exists():
                if not self.force:
                    raise self._fail(f"already holds {self.marker} (use --force to overwrite)")
            elif entries:
                raise self._fail(f"holds other files and no {self.marker}; the whole folder is replaced by the "
                                 f"result, so name a new or empty folder")
        parent = out.resolve().parent if out.name not in ("", ".", "..") else None
        if parent is None:
            raise self._fail("name a folder for the result")
        try:
            parent.mkdir(parents=True, exist_ok=True)
            reclaim_stale(out)
            self.staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-{os.getpid()}-", dir=parent))
        except OSError as exc:
            raise self._fail(f"cannot be written ({exc.strerror or exc})") from None
        return self.staging

    def commit(self) -> Path:
        """Replace :attr:`path` by the staging folder atomically (module docstring); return :attr:`path`."""
        assert self.staging is not None, "prepare() first"
        out = self.path
        if not out.exists():
            os.rename(self.staging, out)
        elif _exchange(self.staging, out):
            shutil.rmtree(self.staging, ignore_errors=True)  # now the old contents
        else:
            parked = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-{os.getpid()}-", dir=out.resolve().parent)) / "old"
            os.rename(out, parked)
            os.rename(self.staging, out)
            shutil.rmtree(parked.parent, ignore_errors=True)
        self.staging = None
        return out

    def discard(self) -> None:
        """Delete the staging folder (the run wrote nothing)."""
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)
            self.staging = None
