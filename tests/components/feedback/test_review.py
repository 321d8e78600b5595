"""The review file, corrections and the training pairs built from them."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from components.feedback.review import (
    CorrectionsError, build_dataset, load_article_labels, load_corrections, read_pairs,
    write_review_file,
)


def _export(root: Path, records):
    folder = root / "20261122T000000Z-abcd"
    folder.mkdir(parents=True)
    with open(folder / "generated.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return root


def _record(reply_id, rating, generated=True, reply="We ship in 3 days.", sources=None):
    record = {"reply_id": reply_id, "timestamp": 1.0, "model_version": "v1",
              "generated": generated, "rating": rating, "reply": reply, "rated_at": 2.0,
              "context": [{"role": "user", "text": f"question {reply_id}"}]}
    if sources is not None:
        record.update(mode="extractive", sources=[{"id": f"{s}#0", "slug": s} for s in sources])
    return record


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)


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
    assert all(r["article"] == "" for r in rows)  # empty until a reviewer names one
    rows[0]["corrected_reply"] = "Standard shipping takes 3-5 business days."
    rows[0]["article"] = "delivery-times"
    _write_csv(out, rows)
    write_review_file(exports, out)  # refreshed after a new export
    assert load_corrections(out)[rows[0]["reply_id"]].startswith("Standard shipping")
    assert load_article_labels(out) == {rows[0]["reply_id"]: "delivery-times"}
    assert out.read_bytes().startswith(b"reply_id,model_version,rating,context,reply,"
                                       b"corrected_reply,article\r\n")  # csv's own line ends
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
        "heldout.jsonl", "manifest.json", "negatives.jsonl", "retrieval_labels.jsonl",
        "train.jsonl"]
    assert (out / "retrieval_labels.jsonl").read_text() == ""
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


def test_old_corrections_file_without_article_column_loads(exports, tmp_path):
    old = tmp_path / "old.csv"
    old.write_text("reply_id,model_version,rating,context,reply,corrected_reply\n"
                   "bad1,v1,not_helpful,user: q,r,Fixed.\n"
                   "bad2,v1,not_helpful,user: q,r,Also fixed.\n")
    assert load_corrections(old) == {"bad1": "Fixed.", "bad2": "Also fixed."}
    assert load_article_labels(old) == {}
    manifest = build_dataset(exports, tmp_path / "ds", old, heldout_fraction=0.3)
    assert manifest["article_labels"] == 0 and manifest["corrections_used"] == 2
    pairs = read_pairs(tmp_path / "ds" / "train.jsonl") + read_pairs(tmp_path / "ds" /
                                                                     "heldout.jsonl")
    assert not any("article" in p for p in pairs)


@pytest.mark.parametrize("slug", ["Delivery-Times", "delivery times", "delivery_times",
                                  "http://localhost:8080/help/delivery-times"])
def test_article_that_is_not_a_slug_is_refused_naming_row_and_fix(exports, tmp_path, slug):
    bad = tmp_path / "review.csv"
    _write_csv(bad, [{"reply_id": "bad1", "corrected_reply": "Fixed.", "article": ""},
                     {"reply_id": "bad2", "corrected_reply": "", "article": slug}])
    with pytest.raises(CorrectionsError) as info:
        build_dataset(exports, tmp_path / "ds", bad)
    message = str(info.value)
    assert str(bad) in message and "row 3 (reply bad2)" in message
    assert "lowercase words joined by hyphens" in message and "leave the cell empty" in message
    assert not (tmp_path / "ds").exists()


def test_article_missing_from_the_help_center_is_refused(exports, tmp_path):
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    for slug in ("delivery-times", "card-refund-timing"):
        (knowledge / f"{slug}.md").write_text("---\n---\n")
    fixes = tmp_path / "fix.jsonl"
    fixes.write_text(json.dumps({"reply_id": "bad1", "corrected_reply": "",
                                 "article": "delivery-time"}) + "\n")
    with pytest.raises(CorrectionsError, match=r"line 1 \(reply bad1\): article "
                                               r"'delivery-time' is not in the help center") as e:
        build_dataset(exports, tmp_path / "ds", fixes, knowledge=knowledge)
    assert "Did you mean delivery-times?" in str(e.value) and f"ls {knowledge}" in str(e.value)
    assert load_article_labels(fixes) == {"bad1": "delivery-time"}  # form alone is fine


def test_conflicting_articles(tmp_path):
    bad = tmp_path / "c.csv"
    bad.write_text("reply_id,corrected_reply,article\nx,,returns\nx,,refunds\n")
    with pytest.raises(CorrectionsError, match=r"row 3: reply x is given two articles"):
        load_article_labels(bad)


def test_dataset_carries_article_labels_and_writes_retrieval_labels(tmp_path):
    records = [_record(f"h{i}", "helpful") for i in range(4)]
    records += [_record("cited", "not_helpful", sources=["returns-policy", "refund-timing"]),
                _record("right", "helpful", sources=["delivery-times"]),
                _record("gen", "not_helpful"), _record("fixed", "not_helpful")]
    exports = _export(tmp_path / "exports", records)
    knowledge = tmp_path / "knowledge"
    knowledge.mkdir()
    for slug in ("delivery-times", "card-refund-timing", "returns-policy"):
        (knowledge / f"{slug}.md").write_text("---\n---\n")
    review = tmp_path / "review.csv"
    write_review_file(exports, review)
    rows = list(csv.DictReader(open(review)))
    labels = {"cited": ("", "card-refund-timing"), "right": ("", "delivery-times"),
              "gen": ("", "returns-policy"), "fixed": ("Refunds take 5 days.",
                                                       "card-refund-timing")}
    for row in rows:
        row["corrected_reply"], row["article"] = labels.get(row["reply_id"], ("", ""))
    _write_csv(review, rows)

    manifest = build_dataset(exports, tmp_path / "ds", review, heldout_fraction=0.3,
                             knowledge=knowledge)
    assert manifest["article_labels"] == 4
    # "cited" cited other articles, "gen" and "fixed" none; "right" cited the named one.
    assert manifest["retrieval_misses"] == {"wrong_article": 1, "no_article": 2}
    pairs = {p["reply_id"]: p for name in ("train.jsonl", "heldout.jsonl")
             for p in read_pairs(tmp_path / "ds" / name)}
    assert pairs["fixed"]["article"] == "card-refund-timing"
    assert pairs["fixed"]["source"] == "correction"
    assert pairs["right"]["article"] == "delivery-times" and "article" not in pairs["h0"]
    lines = [json.loads(line) for line in
             (tmp_path / "ds" / "retrieval_labels.jsonl").read_text().splitlines()]
    assert {(x["reply_id"], x["question"], x["slug"]) for x in lines} == {
        ("cited", "question cited", "card-refund-timing"),
        ("right", "question right", "delivery-times"),
        ("gen", "question gen", "returns-policy"),
        ("fixed", "question fixed", "card-refund-timing")}
    by_id = {x["reply_id"]: x for x in lines}
    assert by_id["cited"]["cited"] == ["returns-policy", "refund-timing"]
    assert by_id["gen"]["cited"] == []
