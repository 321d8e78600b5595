"""The feedback loop's steps run from the console, as background jobs.

A job runs the loop's own CLI (``python -m components.feedback <step>``) in a
child process, exactly as a person would in a terminal, so the console adds no
second implementation and a heavy step (fine-tuning, evaluation) never holds
the console's own threads or memory. Its output goes to a log file, which the
job's page shows while it runs (progress lines included); the page can be left
and revisited. One job runs at a time: the machine this serves has few cores.

A job whose console stopped while it ran is marked ``interrupted`` at the next
start.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from components.console.config import ConsoleConfig
from components.console.db import FAILED, INTERRUPTED, RUNNING, SUCCEEDED, ConsoleDB

LOOP = (sys.executable, "-m", "components.feedback")
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")  # colour codes some libraries print
CODE = Path(__file__).resolve().parents[2]  # the folder `components` is imported from


@dataclass(frozen=True)
class JobKind:
    """A step the console can start: who may, and the commands it runs in order."""

    name: str
    title: str  # what the page's button says
    commands: Callable[[ConsoleConfig], List[Tuple[str, ...]]]
    permission: str = ""  # components.console.users.PERMISSIONS; "" means `name`

    @property
    def needs(self) -> str:
        """The permission a user needs to start it."""
        return self.permission or self.name


def _dataset(config: ConsoleConfig) -> List[Tuple[str, ...]]:
    return [(*LOOP, "export"),
            (*LOOP, "dataset", "--corrections", str(config.path(config.corrections)))]


KINDS: Dict[str, JobKind] = {kind.name: kind for kind in (
    JobKind("dataset", "Export new turns and build the dataset", _dataset),
    JobKind("finetune", "Fine-tune a candidate on the dataset", lambda c: [(*LOOP, "finetune")]),
    JobKind("evaluate", "Evaluate the candidate against the current generator",
            lambda c: [(*LOOP, "evaluate", "--store", c.store_url)]),
    JobKind("promote", "Promote the evaluated candidate", lambda c: [(*LOOP, "promote")]),
    JobKind("force_promote", "Promote anyway, against the evaluation",
            lambda c: [(*LOOP, "promote", "--force")], permission="promote"),
    JobKind("rollback", "Roll back to the previous generator", lambda c: [(*LOOP, "rollback")]),
)}


class JobBusyError(RuntimeError):
    """A job is already running; the message names it."""


def _alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


class JobRunner:
    """Starts jobs and follows them to their end (one at a time)."""

    def __init__(self, config: ConsoleConfig, db: ConsoleDB) -> None:
        self.config = config
        self.db = db
        self._lock = threading.Lock()
        for job in db.jobs(limit=1000):  # left running by a console that stopped
            if job["status"] == RUNNING and not _alive(job["pid"]):
                db.update_job(job["id"], status=INTERRUPTED, finished_at=time.time())

    def running(self) -> Optional[dict]:
        return next((j for j in self.db.jobs(limit=20) if j["status"] == RUNNING), None)

    def start(self, kind: str, user: str) -> int:
        """Starts job ``kind`` for ``user``; returns its id.

        Raises:
            KeyError: for an unknown kind.
            JobBusyError: if another job is running.
        """
        spec = KINDS[kind]
        with self._lock:
            busy = self.running()
            if busy is not None:
                raise JobBusyError(f"Job {busy['id']} ({busy['kind']}, started by "
                                   f"{busy['user']}) is still running; wait for it to finish.")
            logs = self.config.path(self.config.jobs_dir)
            logs.mkdir(parents=True, exist_ok=True)
            log_path = logs / f"{time.strftime('%Y%m%dT%H%M%S')}-{kind}.log"
            job_id = self.db.add_job(kind, user, str(log_path))
        thread = threading.Thread(target=self._run, args=(job_id, spec, log_path),
                                  name=f"console-job-{job_id}", daemon=True)
        thread.start()
        return job_id

    def _run(self, job_id: int, spec: JobKind, log_path: Path) -> None:
        path = os.pathsep.join(filter(None, (str(CODE), os.environ.get("PYTHONPATH"))))
        env = {**os.environ, "TRACKER_STORE_URL": self.config.store_url,
               "PYTHONUNBUFFERED": "1", "PYTHONPATH": path,
               # Libraries' deprecation warnings say nothing to a support lead; errors
               # and the loop's own output still show.
               "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"}
        code = 0
        with open(log_path, "w", encoding="utf-8") as log:
            for command in spec.commands(self.config):
                log.write(f"$ python -m components.feedback {' '.join(command[3:])}\n")
                log.flush()
                try:
                    proc = subprocess.Popen(command, cwd=self.config.root, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)
                except OSError as e:
                    log.write(f"error: cannot start the step: {e}\n")
                    code = 1
                    break
                self.db.update_job(job_id, pid=proc.pid)
                code = proc.wait()
                if code != 0:
                    break
        self.db.update_job(job_id, status=SUCCEEDED if code == 0 else FAILED,
                           returncode=code, finished_at=time.time())


def log_tail(path: str, max_chars: int = 20_000) -> str:
    """The end of a job's log: progress bars at their last state, colour codes removed."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_chars))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(ANSI.sub("", line.rstrip("\r").rsplit("\r", 1)[-1])
                     for line in text.split("\n"))
