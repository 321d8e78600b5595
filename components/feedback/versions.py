"""The generator versions on disk, which one is current, promotion and roll-back.

Layout (``models/generators`` by default, gitignored)::

    models/generators/
      kestrel-gpt-3f2a9c1d0b7e/     one folder per version (a checkpoint)
      kestrel-gpt-81c0d4aa5e12/
      current -> kestrel-gpt-81c0d4aa5e12   symlink: the promoted version
      history.jsonl                 one line per promote / rollback

The GPT policy reads ``current`` (config.yml ``promoted``) on the next
``rasa train``; ``current`` is replaced atomically (new symlink, then rename),
so a server or a training run never sees a half-switched generator.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from components.generator.atomic import atomic_dir
from components.generator.generator import Generator, adapter_base, is_adapter, read_meta

DEFAULT_ROOT = Path("models/generators")
CURRENT = "current"
HISTORY = "history.jsonl"


class VersionError(RuntimeError):
    """A promote or rollback cannot be done; the message says why."""


class GeneratorVersions:
    """The versions folder (see module docstring)."""

    def __init__(self, root: Union[str, Path] = DEFAULT_ROOT) -> None:
        self.root = Path(root)

    def current(self) -> Optional[Path]:
        """The promoted version's folder, or None before the first promotion."""
        link = self.root / CURRENT
        return link.resolve() if link.is_dir() else None

    def current_version(self) -> Optional[str]:
        path = self.current()
        return read_meta(path).get("version", path.name) if path else None

    def add(self, checkpoint: Union[str, Path]) -> Path:
        """Copies a checkpoint in under its version name (idempotent); returns its folder.

        A LoRA adapter's full model is added too (under its own version name),
        so the adapter loads from the versions folder wherever it was trained.

        Raises:
            GeneratorLoadError: if ``checkpoint`` is not a loadable causal LM.
            OSError: if the copy fails (no partial version folder is left).
        """
        checkpoint = Path(checkpoint)
        version = Generator.load(checkpoint).model_version  # fails early on a bad folder
        if is_adapter(checkpoint):  # its full model is kept beside it, where load looks first
            self.add(adapter_base(checkpoint))
        target = self.root / version
        if not target.is_dir():
            with atomic_dir(target) as tmp:
                shutil.copytree(checkpoint, tmp, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("trainer_state.pt*"))
        return target

    def history(self) -> List[Dict[str, Any]]:
        """Every promote and rollback, oldest first."""
        path = self.root / HISTORY
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                if line.strip()]

    def _switch(self, version: str, action: str, reason: str) -> Dict[str, Any]:
        target = self.root / version
        if not target.is_dir():
            raise VersionError(f"Generator version '{version}' is not in {self.root}.")
        previous = self.current()
        tmp_link = self.root / f".{CURRENT}.tmp"
        if tmp_link.is_symlink() or tmp_link.exists():
            tmp_link.unlink()
        os.symlink(version, tmp_link)  # relative: the folder can be moved as a whole
        os.replace(tmp_link, self.root / CURRENT)
        entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "action": action,
                 "version": version, "previous": previous.name if previous else None,
                 "reason": reason}
        with open(self.root / HISTORY, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        return entry

    def promote(self, checkpoint: Union[str, Path], reason: str = "",
                baseline: Optional[str] = None) -> Dict[str, Any]:
        """Adds ``checkpoint`` and makes it current; returns the history entry.

        ``baseline``: on the first promotion, the version (a folder here) that
        was serving until now is recorded as promoted first, so that
        ``rollback`` can return to it.

        Raises:
            VersionError: if it is already the current version.
        """
        if self.current() is None and baseline and (self.root / baseline).is_dir():
            self._switch(baseline, "promote", "baseline before the first promotion")
        folder = self.add(checkpoint)
        current = self.current()
        if current is not None and current.name == folder.name:
            raise VersionError(f"'{folder.name}' is already the current generator.")
        return self._switch(folder.name, "promote", reason)

    def rollback(self) -> Dict[str, Any]:
        """Makes the version before the current one current again; returns the entry.

        Raises:
            VersionError: if there is no earlier version to return to.
        """
        current = self.current()
        if current is None:
            raise VersionError(f"Nothing to roll back: no generator has been promoted in "
                               f"{self.root}.")
        # Walk the history back: the version that was current before this one.
        stack: List[str] = []
        for entry in self.history():
            if entry["action"] == "promote":
                stack.append(entry["version"])
            elif entry["action"] == "rollback" and stack:
                stack.pop()
        if len(stack) < 2 or stack[-1] != current.name:
            raise VersionError(f"Nothing to roll back to: '{current.name}' is the first "
                               f"promoted generator in {self.root}.")
        return self._switch(stack[-2], "rollback", f"rolled back from {current.name}")
