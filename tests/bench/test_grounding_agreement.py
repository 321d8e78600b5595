"""bench/grounding_agreement.py: the judged samples' schema (dev and blind test) and runs on
small samples."""
from __future__ import annotations

import pytest
import yaml

from bench import grounding_agreement as agreement
from tests.e2e_fixtures import ROOT


def _norm(text: str) -> str:
    return " ".join(text.split())


# sample -> (at least this many items, at least this many of each label, id prefix)
SAMPLES = {
    agreement.DEFAULT_SAMPLE: (120, 40, "g"),
    agreement.TEST_SAMPLE: (100, 35, "t"),
}


@pytest.fixture(scope="module", params=list(SAMPLES), ids=lambda p: p.name)
def sample(request):
    return request.param


@pytest.fixture(scope="module")
def items(sample):
    return agreement.read_sample(sample)


@pytest.fixture(scope="module")
def articles():
    """slug -> (raw Markdown body, the passages' text as knowledge.py splits it), normalised."""
    from components.generator.knowledge import load_articles, split_passages

    return {a.slug: (_norm(a.body), _norm(" ".join(p.text for p in split_passages(a))))
            for a in load_articles(ROOT / "data" / "knowledge")}


def test_sample_schema(sample, items):
    min_items, min_per_label, prefix = SAMPLES[sample]
    assert len(items) >= min_items
    ids = [i["id"] for i in items]
    assert len(ids) == len(set(ids))
    assert ids == [f"{prefix}{n:03d}" for n in range(1, len(ids) + 1)]
    for item in items:
        assert set(agreement.FIELDS) <= set(item), item["id"]
        assert item["kind"] in agreement.KINDS, item["id"]
        # The kind fixes the label: copy/paraphrase/merge/conversational are supported.
        assert item["supported"] is agreement.KINDS[item["kind"]], item["id"]
    labels = [i["supported"] for i in items]
    assert labels.count(True) >= min_per_label and labels.count(False) >= min_per_label
    assert set(agreement.KINDS) == {i["kind"] for i in items}  # every kind is covered


def test_passages_are_copied_from_their_articles(items, articles):
    for item in items:
        assert item["passage_slug"] in articles, f"{item['id']}: no article {item['passage_slug']}"
        body, parsed = articles[item["passage_slug"]]
        passage = _norm(item["passage"])
        # Either the Markdown as written, or the text as knowledge.py flattens a list section.
        assert passage in body or passage in parsed, \
            f"{item['id']}: passage not found in data/knowledge/{item['passage_slug']}.md"
    assert len({i["passage_slug"] for i in items}) >= 30  # spread over many articles


def test_test_sample_is_independent_of_the_dev_sample():
    dev = agreement.read_sample(agreement.DEFAULT_SAMPLE)
    test = agreement.read_sample(agreement.TEST_SAMPLE)
    assert not {i["id"] for i in dev} & {i["id"] for i in test}
    assert not {_norm(i["reply"]) for i in dev} & {_norm(i["reply"]) for i in test}
    # Mostly passages the dev sample doesn't use, and articles it doesn't use at all.
    dev_passages = {_norm(i["passage"]) for i in dev}
    fresh = [i for i in test if _norm(i["passage"]) not in dev_passages]
    assert len(fresh) >= 0.9 * len(test)
    assert len({i["passage_slug"] for i in test} - {i["passage_slug"] for i in dev}) >= 15


def test_read_sample_rejects_bad_items(tmp_path):
    path = tmp_path / "bad.yml"
    good = {"id": "a", "passage_slug": "s", "passage": "p", "reply": "r", "supported": True,
            "kind": "copy", "note": "n"}
    for bad, message in [([good, dict(good)], "used twice"),
                         ([{**good, "kind": "rumour"}], "kind"),
                         ([{**good, "supported": "yes"}], "true or false"),
                         ([{**good, "note": ""}], "lacks")]:
        path.write_text(yaml.safe_dump({"items": bad}))
        with pytest.raises(ValueError, match=message):
            agreement.read_sample(path)


PASSAGE = ("Standard shipping costs $4.95 and takes 3-5 business days, and standard shipping is "
           "free on orders over $50. Express shipping costs $12.95 and takes 1-2 business days.")


def test_main_on_a_small_sample(tmp_path):
    sample = [
        ("t1", "Standard shipping costs $4.95 and takes 3-5 business days.", True, "copy"),
        ("t2", "Happy to help!", True, "conversational"),
        ("t3", "Express shipping costs $9.95 and takes 1-2 business days.", False, "wrong_number"),
        ("t4", "Express shipping costs $12.95 and takes 3-5 business days.", False, "swap"),
        ("t5", "Standard shipping is free on orders over $50. Returns are free for a year, "
               "even for used items.", False, "partial"),
    ]
    path = tmp_path / "sample.yml"
    path.write_text(yaml.safe_dump({"items": [
        {"id": i, "passage_slug": "shipping-costs", "passage": PASSAGE, "reply": reply,
         "supported": label, "kind": kind, "note": "test"} for i, reply, label, kind in sample]}))
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkept\n")

    results = agreement.main(["--sample", str(path), "--report", str(doc)])

    assert list(results) == [str(path)]  # outside the repository: shown as given
    figures = results[str(path)]

    # t4 keeps every fact and word of the passage, only in the wrong place: the
    # lexical check lets it through; the other four it decides as the labels say.
    assert figures["n"] == 5
    assert figures["agreement"] == pytest.approx(0.8)
    assert figures["recall_unsupported"] == pytest.approx(2 / 3)
    assert figures["precision_unsupported"] == pytest.approx(1.0)
    assert figures["confusion"] == {"tp": 2, "fn": 1, "fp": 0, "tn": 2}
    assert [r["item"]["id"] for r in figures["disagreements"]] == ["t4"]
    assert figures["per_kind"]["swap"] == {"n": 1, "agree": 0, "blocked": 0}
    assert figures["per_kind"]["wrong_number"]["blocked"] == 1

    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    assert text.count(agreement.MARK) == 2
    assert "| agreement with the labels | 80.0% |" in text
    assert "| t4 | swap |" in text and "every sentence passed" in text
    # Re-running replaces the section rather than appending a second one.
    agreement.main(["--sample", str(path), "--report", str(doc)])
    assert doc.read_text().count(agreement.MARK) == 2


def _write_sample(path, replies):
    path.write_text(yaml.safe_dump({"items": [
        {"id": f"x{n}", "passage_slug": "shipping-costs", "passage": PASSAGE, "reply": reply,
         "supported": label, "kind": kind, "note": "test"}
        for n, (reply, label, kind) in enumerate(replies)]}))
    return path


def test_main_reports_each_sample_in_one_section(tmp_path):
    # Named like the real files, so the report names them by their role.
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    dev = _write_sample(tmp_path / "a" / agreement.DEFAULT_SAMPLE.name, [
        ("Standard shipping costs $4.95 and takes 3-5 business days.", True, "copy"),
        ("Express shipping costs $9.95 and takes 1-2 business days.", False, "wrong_number"),
    ])
    test = _write_sample(tmp_path / "b" / agreement.TEST_SAMPLE.name, [
        ("Happy to help!", True, "conversational"),
        ("Express shipping costs $12.95 and takes 3-5 business days.", False, "swap"),
        ("Standard shipping is free on orders over $50. Returns are free for a year, "
         "even for used items.", False, "partial"),
    ])
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nkept\n")

    results = agreement.main(["--sample", str(dev), "--sample", str(test),
                              "--report", str(doc)])

    assert list(results) == [str(dev), str(test)]
    assert [results[str(dev)]["n"], results[str(test)]["n"]] == [2, 3]
    assert results[str(dev)]["agreement"] == pytest.approx(1.0)
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nkept\n")
    assert text.count(agreement.MARK) == 2  # one section for both samples
    assert f"--sample {dev} --sample {test}" in text
    assert "| figure | dev: designed against | test: written blind |" in text
    assert "| agreement with the labels | 100.0% | " in text
    assert f"### dev: designed against (`{dev}`)" in text
    assert f"### test: written blind (`{test}`)" in text
    assert text.index("### dev: designed against") < text.index("### test: written blind")
    with pytest.raises(SystemExit):
        agreement.main(["--sample", str(dev), "--sample", str(dev)])


def test_main_defaults_to_both_samples():
    results = agreement.main([])

    assert list(results) == ["bench/data/grounding_judged.yml",
                             "bench/data/grounding_judged_test.yml"]
    for path, figures in results.items():
        assert figures["n"] == len(agreement.read_sample(ROOT / path))
