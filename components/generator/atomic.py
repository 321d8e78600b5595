"""Writing a folder or a file so that readers see all of it or none of it.

Several outputs are read by other processes while they may be being written:
the GPT policy's generator cache and generator checkpoints (read by
``rasa train`` and the server), and the feedback loop's exports, datasets,
evaluation reports and generator versions (read by the next step of the loop).
A crash half-way through writing one must not leave a half-written folder
that a reader takes for a complete one.

So each is written into a temporary sibling of its target, in the same folder
and hence on the same filesystem, and renamed onto the target only when
complete: a rename within one filesystem is atomic (POSIX ``rename(2)``). On
an exception the temporary sibling is removed and the target is left as it
was. Only a hard kill (SIGKILL, power loss) can leave a hidden
``.<target name>-*`` sibling behind; it is never mistaken for the target.

No Rasa imports: this module is used by ``components.generator`` and
``components.feedback`` alike.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, Path]


@contextmanager
def atomic_dir(target: PathLike, replace: bool = False) -> Iterator[Path]:
    """Yields an empty temporary folder that becomes ``target`` when the block succeeds.

    The temporary folder is a hidden sibling of ``target`` (``.<name>-<random>``,
    created with ``tempfile.mkdtemp``, so mode 0700); ``target``'s parent folders are
    created first. When the block ends without an exception the temporary folder
    is renamed onto ``target``. When the block raises (any exception, including
    ``KeyboardInterrupt``) it is removed and ``target`` is left untouched.

    To publish nothing without raising, remove the temporary folder inside the
    block (``shutil.rmtree(tmp)``): ``target`` is then left as it was.

    Args:
        target: the folder to create (or replace).
        replace: what to do with an existing ``target``. False: raise
            ``FileExistsError`` (nothing is changed). True: replace it; the old
            folder is moved aside first and deleted only after the new one is in
            place, and is moved back if that rename fails, so ``target`` is missing
            only for the instant between two renames.

    Raises:
        FileExistsError: if ``target`` exists when the block ends and ``replace`` is False.
        NotADirectoryError: if ``target`` is a file or a symlink when the block ends
            and ``replace`` is True (it is never deleted).
        OSError: if the parent folder cannot be created or a rename fails.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield tmp
        if tmp.exists():  # the block may have removed it to publish nothing
            _rename_onto(tmp, target, replace)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # a no-op after the rename


def _rename_onto(tmp: Path, target: Path, replace: bool) -> None:
    """Renames the complete folder ``tmp`` onto ``target`` (see ``atomic_dir``)."""
    exists = target.exists() or target.is_symlink()
    if exists and not replace:
        raise FileExistsError(errno.EEXIST, "Target folder already exists", str(target))
    if not exists:
        tmp.rename(target)
        return
    if target.is_symlink() or not target.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "Cannot replace a file or symlink with a "
                                 "folder", str(target))
    old = target.with_name(f".{target.name}-old-{uuid.uuid4().hex[:8]}")
    target.rename(old)
    try:
        tmp.rename(target)
    except OSError:
        old.rename(target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    """Writes ``text`` to the file ``path``, replacing it atomically.

    The text goes to a hidden sibling ``.<name>.<random>.tmp`` first, which then
    replaces ``path`` in one ``os.replace``: readers see the old file or the new
    one, never a partial one. Newlines are written as given (no translation), so
    CSV ``\\r\\n`` line ends stay intact. The file gets the usual permissions
    (0666 less the umask). ``path``'s folder is not created.

    Raises:
        OSError: if the folder does not exist or the file cannot be written; the
            temporary file is then removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "x", encoding=encoding, newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
