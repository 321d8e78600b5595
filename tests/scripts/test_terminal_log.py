"""scripts/terminal_log.py: the terminal gets progress, errors and the start-up time; the file gets all."""
from __future__ import annotations

import io
import subprocess
import sys

from scripts import terminal_log
from shared_names import PROGRESS_LOGGER
from tests.e2e_fixtures import ROOT

RASA_STDERR = f"""\
/x/site-packages/rasa/core/tracker_store.py:1044: MovedIn20Warning: Deprecated API features detected!
  Base: DeclarativeMeta = declarative_base()
2026-12-03 16:10:32 INFO     root  - Starting Rasa server on http://0.0.0.0:5005
2026-12-03 16:10:33 INFO     {PROGRESS_LOGGER}  - Loading the NLU (intents, out-of-scope rule)...
2026-12-03 16:11:32 INFO     jax._src.xla_bridge  - Unable to initialize backend 'cuda':
2026-12-03 16:11:32 WARNING  rasa.shared.utils.io  - a warning stays in the file
2026-12-03 16:11:32 WARNING  components.policies.gpt_policy  - GPTPolicy could not load
2026-12-03 16:11:33 INFO     root  - Rasa server is up and running.
2026-12-03 16:11:40 ERROR    rasa.core.processor  - Encountered an exception while running action
Traceback (most recent call last):
  File "x.py", line 1, in <module>
    boom()
ValueError: boom
2026-12-03 16:11:41 INFO     rasa.core.processor  - after the traceback: the file only
"""


def test_the_terminal_gets_progress_ready_and_errors_only():
    shown = list(terminal_log.shown(io.StringIO(RASA_STDERR), started_s=100.0,
                                    clock=lambda: 178.4))
    assert shown == [
        "Loading the NLU (intents, out-of-scope rule)...",
        "2026-12-03 16:11:32 WARNING  components.policies.gpt_policy  - GPTPolicy could not load",
        "Ready in 78 s.",
        "2026-12-03 16:11:40 ERROR    rasa.core.processor  - Encountered an exception while "
        "running action",
        "Traceback (most recent call last):",
        '  File "x.py", line 1, in <module>',
        "    boom()",
        "ValueError: boom",
    ]


def test_the_log_file_gets_every_line(tmp_path):
    log = tmp_path / "var" / "shell.log"
    out = io.StringIO()
    terminal_log.run(io.StringIO(RASA_STDERR), out, log, started_s=None)
    assert log.read_text() == RASA_STDERR
    assert "Ready." in out.getvalue() and "Deprecated" not in out.getvalue()


def test_as_a_pipe_it_streams_line_by_line(tmp_path):
    """Run as chat.sh runs it: a line reaches the terminal before the input ends."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "terminal_log.py"),
                             str(tmp_path / "shell.log")], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    proc.stdin.write(f"2026-12-03 16:10:33 INFO     {PROGRESS_LOGGER}  - Loading...\n")
    proc.stdin.flush()
    assert proc.stdout.readline() == "Loading...\n"  # would block if the filter buffered
    proc.stdin.close()
    assert proc.wait(timeout=30) == 0
