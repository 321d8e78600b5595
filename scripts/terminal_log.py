"""What `make chat` shows of Rasa's log (progress, errors, start-up time); the rest goes to a file.

    rasa shell ... 2> >(python scripts/terminal_log.py var/shell.log START_EPOCH_S >&2)

Why: `rasa shell` prints some 25 lines of third-party DeprecationWarnings and INFO
logs before its prompt, and a customer-facing demo drowns in them. Every line read
on standard input is appended to the log file; the terminal (standard output of
this filter, redirected to stderr by the caller) gets only:

- the project's progress lines (logger ``shared_names.PROGRESS_LOGGER``), as their
  message alone: "Loading the sentence encoder (all-MiniLM-L6-v2)...";
- "Ready in N s." when Rasa says its server is up, N counted from START_EPOCH_S
  (seconds since the epoch, ``date +%s`` when `make chat` started loading);
- every log line at ERROR or CRITICAL, the project's own warnings (loggers under
  ``components.``: a help-center index that could not load, say), and every
  traceback (from "Traceback" to the exception's own line), whole, so that a
  failure is never hidden.
"""
from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Iterable, Iterator, Optional, TextIO

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from shared_names import PROGRESS_LOGGER

# Rasa's log format: "2026-12-03 16:10:32 INFO     rasa.core.processor  - message"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+(?P<level>[A-Z]+)\s+"
                      r"(?P<logger>\S+)\s+-\s(?P<message>.*)$")
READY = "Rasa server is up and running."  # rasa.core.run logs it when the shell can start
SHOWN_LEVELS = ("ERROR", "CRITICAL")
OWN_LOGGERS = "components."  # the project's modules: their warnings are shown too


def shown(lines: Iterable[str], started_s: Optional[float] = None,
          clock=time.time) -> Iterator[str]:
    """The lines the terminal gets, each without its newline (see module docstring)."""
    in_traceback = False
    for raw in lines:
        line = raw.rstrip("\n")
        if in_traceback:
            yield line
            # The block ends with the exception's line: the first one not indented.
            in_traceback = line.startswith((" ", "\t")) or not line.strip()
            continue
        if line.startswith("Traceback (most recent call last)"):
            in_traceback = True
            yield line
            continue
        match = LOG_LINE.match(line)
        if match is None:
            continue  # warnings and other third-party chatter: the file only
        if match["logger"] == PROGRESS_LOGGER:
            yield match["message"]
        elif match["message"].strip() == READY:
            yield (f"Ready in {clock() - started_s:.0f} s." if started_s is not None
                   else "Ready.")
        elif match["level"] in SHOWN_LEVELS or (
                match["level"] == "WARNING" and match["logger"].startswith(OWN_LOGGERS)):
            yield line


def run(stdin: TextIO, stdout: TextIO, log_path: Path, started_s: Optional[float]) -> None:
    """Appends ``stdin`` to ``log_path`` and writes ``shown`` lines to ``stdout``, line by line."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", encoding="utf-8") as log:
        def logged() -> Iterator[str]:
            for line in stdin:
                log.write(line)
                log.flush()
                yield line

        for line in shown(logged(), started_s):
            stdout.write(line + "\n")
            stdout.flush()


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or len(args) > 2:
        print("usage: terminal_log.py LOG_FILE [START_EPOCH_S]", file=sys.stderr)
        return 2
    started = float(args[1]) if len(args) == 2 else None
    run(sys.stdin, sys.stdout, Path(args[0]), started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
