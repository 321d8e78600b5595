"""The command line: one-line errors and exit codes, nothing written on failure."""
from __future__ import annotations

import pytest

from components.feedback.cli import _since, main


def test_missing_store_exits_2_with_one_line(tmp_path, capsys):
    code = main(["export", "--store", f"sqlite:///{tmp_path / 'none.db'}",
                 "--out", str(tmp_path / "exports")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "exports").exists()


def test_bad_corrections_exit_1(tmp_path, capsys):
    (tmp_path / "exports" / "20260101T000000Z-0001").mkdir(parents=True)
    (tmp_path / "exports" / "20260101T000000Z-0001" / "generated.jsonl").write_text(
        '{"reply_id": "a", "timestamp": 1, "model_version": "v", "generated": true, '
        '"rating": "helpful", "reply": "r", "rated_at": 2, '
        '"context": [{"role": "user", "text": "q"}]}\n')
    (tmp_path / "fix.csv").write_text("id,text\n")
    code = main(["dataset", "--exports", str(tmp_path / "exports"), "--corrections",
                 str(tmp_path / "fix.csv"), "--out", str(tmp_path / "ds")])
    assert code == 1 and "lacks the column(s)" in capsys.readouterr().err
    assert not (tmp_path / "ds").exists()


def test_dataset_checks_article_slugs_against_the_help_center(tmp_path, capsys):
    (tmp_path / "exports" / "20260101T000000Z-0001").mkdir(parents=True)
    (tmp_path / "exports" / "20260101T000000Z-0001" / "generated.jsonl").write_text(
        '{"reply_id": "a", "timestamp": 1, "model_version": "v", "generated": true, '
        '"rating": "helpful", "reply": "r", "rated_at": 2, '
        '"context": [{"role": "user", "text": "q"}]}\n')
    (tmp_path / "knowledge").mkdir()
    (tmp_path / "knowledge" / "gift-cards.md").write_text("---\n---\n")
    args = ["dataset", "--exports", str(tmp_path / "exports"), "--corrections",
            str(tmp_path / "fix.csv"), "--knowledge", str(tmp_path / "knowledge")]
    (tmp_path / "fix.csv").write_text("reply_id,corrected_reply,article\na,,gift-card\n")
    assert main(args + ["--out", str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "row 2 (reply a)" in err and "gift-cards" in err
    assert not (tmp_path / "bad").exists()
    (tmp_path / "fix.csv").write_text("reply_id,corrected_reply,article\na,,gift-cards\n")
    assert main(args + ["--out", str(tmp_path / "ds")]) == 0
    assert "Retrieval labels: 1 turn(s)" in capsys.readouterr().out
    assert '"slug": "gift-cards"' in (tmp_path / "ds" / "retrieval_labels.jsonl").read_text()


def test_rollback_without_history_exit_1(tmp_path, capsys):
    assert main(["rollback", "--versions", str(tmp_path / "g")]) == 1
    assert "Nothing to roll back" in capsys.readouterr().err


def test_since_accepts_epoch_and_iso_dates():
    assert _since("1700000000") == 1_700_000_000.0
    assert _since("2026-11-01") == _since("2026-11-01T00:00:00Z") == 1_793_491_200.0
    with pytest.raises(Exception, match="neither seconds since epoch nor an ISO date"):
        _since("last tuesday")
