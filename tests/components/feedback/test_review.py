"""The review file, corrections and the training pairs built from them."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from components.feedback.review import (
    CorrectionsError, build_dataset, load_corrections, read_pairs, write_review_file,
)


def _export(root: Path, records):
    folder = root / "20261122T000000Z-abcd"
    folder.mkdir(parents=True)
    with open(folder / "generated.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return root


def _record(reply_id, rating, generated=True, reply="We ship in 3 days."):
    return {"reply_id": reply_id, "timestamp": 1.0, "model_version": "v1",
            "generated": generated, "rating": rating, "reply": reply, "rated_at": 2.0,
            "context": [{"role": "user", "text": f"question {reply_id}"}]}


@pytest.fixture
def exports(tmp_path):
    records = [_record(f"h{i}", "helpful") for i in range(8)]
    records += [_record("bad1", "not_helpful"), _record("bad2", "not_helpful"),
                _record("none", None), _record("canned", "helpful", generated=False)]
    return _export(tmp_path / "exports", records)


def test_review_file_lists_bad_turns_first_and_keeps_corrections(exports, tmp_path):
    out = tmp_path / "review.csv"
    assert write_review_file(exports, out) == 12
    rows = list(csv.DictReader(open(out)))
    assert [r["rating"] for r in rows[:2]] == ["not_helpful", "not_helpful"]
    rows[0]["corrected_reply"] = "Standard shipping takes 3-5 business days."
    with open(out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)
    write_review_file(exports, out)  # refreshed after a new export
    assert load_corrections(out)[rows[0]["reply_id"]].startswith("Standard shipping")
    assert out.read_bytes().startswith(b"reply_id,model_version,rating,context,reply,"
                                       b"corrected_reply\r\n")  # csv's own line ends
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exports", "review.csv"]


def test_dataset_uses_corrections_and_helpful_replies(exports, tmp_path):
    corrections = tmp_path / "fix.jsonl"
    fixes = {"bad1": "Fixed.", "none": "Also fixed.", "h0": "Better.", "zzz": "?"}
    corrections.write_text("".join(json.dumps({"reply_id": k, "corrected_reply": v}) + "\n"
                                   for k, v in fixes.items()))
    manifest = build_dataset(exports, tmp_path / "ds", corrections, heldout_fraction=0.3)
    train = read_pairs(tmp_path / "ds" / "train.jsonl")
    heldout = read_pairs(tmp_path / "ds" / "heldout.jsonl")
    negatives = read_pairs(tmp_path / "ds" / "negatives.jsonl")
    pairs = {p["reply_id"]: p for p in train + heldout}
    assert set(pairs) == {f"h{i}" for i in range(8)} | {"bad1", "none"}
    assert pairs["bad1"]["reply"] == "Fixed." and pairs["bad1"]["source"] == "correction"
    assert [n["reply_id"] for n in negatives] == ["bad2"]
    assert heldout and train and manifest["unknown_corrections"] == ["zzz"]
    # Only human-written references are held out: helpful replies are the model's own.
    assert {p["source"] for p in heldout} == {"correction"}
    assert manifest["heldout_source"] == "correction"
    # Rebuilding gives the same split: held-out turns never leak into training.
    build_dataset(exports, tmp_path / "ds2", corrections, heldout_fraction=0.3)
    assert read_pairs(tmp_path / "ds2" / "heldout.jsonl") == heldout


def test_rebuilding_replaces_the_dataset_and_leaves_no_temp_folder(exports, tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "stale.jsonl").write_text("old run\n")
    build_dataset(exports, out, heldout_fraction=0.3)
    assert sorted(p.name for p in out.iterdir()) == [
        "heldout.jsonl", "manifest.json", "negatives.jsonl", "train.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "exports"]


def test_corrections_file_with_missing_columns(exports, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,fixed\nbad1,Fixed.\n")
    with pytest.raises(CorrectionsError, match=r"lacks the column\(s\) \['reply_id', "
                                               r"'corrected_reply'\]"):
        build_dataset(exports, tmp_path / "ds", bad)
    assert not (tmp_path / "ds").exists()


def test_conflicting_corrections(tmp_path):
    bad = tmp_path / "c.csv"
    bad.write_text("reply_id,corrected_reply\nx,One.\nx,Two.\n")
    with pytest.raises(CorrectionsError, match="twice"):
        load_corrections(bad)


def test_nothing_to_train_on(tmp_path):
    exports = _export(tmp_path / "e", [_record("a", "not_helpful")])
    with pytest.raises(ValueError, match="nothing to train on"):
        build_dataset(exports, tmp_path / "ds")


def test_without_corrections_the_heldout_set_is_marked_biased(exports, tmp_path):
    manifest = build_dataset(exports, tmp_path / "ds", heldout_fraction=0.3)
    assert manifest["heldout"] >= 1 and manifest["heldout_source"].startswith("helpful")
