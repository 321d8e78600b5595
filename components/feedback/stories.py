"""Sessions -> Rasa test stories (``rasa test core --stories``), written as they come.

The one feedback module that imports Rasa: test stories are Rasa's format, so
Rasa's own tracker and ``YAMLStoryWriter`` write them. Imports happen when a
writer is created, so the rest of the feedback loop runs without loading Rasa.
Sessions are converted and appended in batches, so memory does not grow with
the size of the store.
"""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Dict, List, Tuple

logger = logging.getLogger(__name__)

HEADER = 'version: "3.1"\nstories:\n'


class TestStoryWriter:
    """Appends one test story per session to a YAML file; ``close`` returns the count."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, out: Path, domain_path: str = "domain.yml", batch: int = 200) -> None:
        """Opens ``out`` for writing; slots come from ``domain_path`` when it exists."""
        from rasa.shared.core.domain import Domain
        from rasa.shared.core.training_data.story_writer.yaml_story_writer import (
            YAMLStoryWriter,
        )

        self._slots = Domain.load(domain_path).slots if Path(domain_path).is_file() else []
        self._writer = YAMLStoryWriter()
        self._file = open(out, "w", encoding="utf-8")
        self._pending: List[Tuple[str, List[Dict[str, Any]]]] = []
        self._batch = batch
        self.written = 0

    def add(self, name: str, events: List[Dict[str, Any]]) -> None:
        """Queues one session (already redacted event dicts) named ``name``."""
        self._pending.append((name, events))
        if len(self._pending) >= self._batch:
            self._flush()

    def _flush(self) -> None:
        from rasa.shared.core.trackers import DialogueStateTracker

        steps = []
        for name, events in self._pending:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    tracker = DialogueStateTracker.from_dict(name, events, self._slots)
                    story = tracker.as_story()
            except Exception as e:  # noqa: BLE001 - one bad session must not stop the export
                logger.warning("Skipped session %s as a test story: %s", name, e)
                continue
            if any(step.events for step in story.story_steps):
                steps += story.story_steps
                self.written += 1
        self._pending = []
        if steps:
            if self._file.tell() == 0:
                self._file.write(HEADER)
            self._file.write(self._writer.dumps(steps, is_appendable=True, is_test_story=True))

    def close(self) -> int:
        """Writes what is queued and closes the file; returns the number of stories."""
        self._flush()
        if self._file.tell() == 0:
            self._file.write('version: "3.1"\nstories: []\n')
        self._file.close()
        return self.written
