"""Jobs: the loop's CLI run from the console in a child process, followed to its end."""
from __future__ import annotations

import time

import pytest

from components.console.db import FAILED, INTERRUPTED, RUNNING, SUCCEEDED
from components.console.jobs import JobBusyError, log_tail
from tests.components.console.conftest import login, token


def wait(db, job_id, timeout_s=180.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = db.job(job_id)
        if job["status"] != RUNNING:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still running after {timeout_s} s")


def test_building_the_dataset_counts_a_correction(console):
    app, config = console
    db = app.extensions["kestrel_console"]["db"]
    client = app.test_client()
    login(client, "rita")
    client.post("/review/a1a1a1a1a1a1a1a1", data={
        "verdict": "corrected", "corrected_reply": "Gift cards come in 25, 50 and 100 dollars.",
        "article": "buying-gift-cards", "revision": 0, "csrf_token": token(client, "/review")})
    response = client.post("/jobs/dataset", data={"csrf_token": token(client, "/dataset")})
    assert response.status_code == 302 and response.headers["Location"] == "/jobs/1"
    job = wait(db, 1)
    log = log_tail(job["log_path"])
    assert job["status"] == SUCCEEDED, log
    assert "$ python -m components.feedback export" in log and "Exported 3 generated turns" in log
    assert "(1 from corrections)" in log
    page = client.get("/dataset").get_data(as_text=True)
    assert '<td id="corrections-used">1</td>' in page
    assert 'id="corrected">1<' in page
    assert "<td>rita</td>" in client.get("/jobs").get_data(as_text=True)


def test_a_failing_step_marks_the_job_failed_with_its_error(console):
    app, _ = console
    db = app.extensions["kestrel_console"]["db"]
    client = app.test_client()
    login(client, "lena")
    client.post("/jobs/promote", data={"csrf_token": token(client, "/models")})
    job = wait(db, 1)
    assert job["status"] == FAILED and job["returncode"] == 1
    html = client.get("/jobs/1").get_data(as_text=True)
    assert "error:" in html and 'data-status="failed"' in html
    log = db.audit_log()
    assert (log[0]["user"], log[0]["action"], log[0]["target"]) == ("lena", "promote", "job 1")


def test_one_job_at_a_time_and_a_stopped_console_interrupts_its_job(console):
    from components.console.jobs import JobRunner

    app, config = console
    runner = app.extensions["kestrel_console"]["runner"]
    db = runner.db
    job_id = db.add_job("finetune", "lena", "/nonexistent.log")  # as if one were running
    db.update_job(job_id, pid=2 ** 22 + 12345)  # no such process
    with pytest.raises(JobBusyError, match="finetune, started by lena"):
        runner.start("dataset", "rita")
    JobRunner(config, db)  # a console starting again
    assert db.job(job_id)["status"] == INTERRUPTED
    assert log_tail("/nonexistent.log") == ""


def test_the_log_shows_a_progress_bar_at_its_last_state(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("start\nsteps:  10%|#\rsteps:  50%|#####\rsteps: 100%|##########\r\n"
                   "\x1b[93mdone\x1b[0m\n")
    assert log_tail(str(log)).splitlines() == ["start", "steps: 100%|##########", "done"]
