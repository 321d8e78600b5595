"""The help center: articles parsed, checked and split into passages."""
from __future__ import annotations

from pathlib import Path

import pytest

from components.generator.knowledge import (
    KnowledgeError, KnownQuestion, fingerprint, load_articles, load_known_questions, load_passages,
    questions_fingerprint, split_passages,
)

ROOT = Path(__file__).resolve().parents[3]
GOOD = """---
title: Shipping costs
slug: shipping-costs
tags: [delivery, costs]
last_reviewed: 2026-12-01
---
Standard shipping is free on orders over $50.

## Express shipping
- Express costs $12.95
- It takes 1-2 business days

## Standard shipping
Standard costs $4.95 below $50.
"""


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_an_article_is_split_into_its_opening_and_sections(tmp_path):
    write(tmp_path, "shipping-costs.md", GOOD)
    [article] = load_articles(tmp_path)
    assert (article.slug, article.title, article.tags, article.last_reviewed) == (
        "shipping-costs", "Shipping costs", ("delivery", "costs"), "2026-12-01")
    passages = split_passages(article)
    assert [(p.id, p.heading) for p in passages] == [
        ("shipping-costs#0", ""), ("shipping-costs#1", "Express shipping"),
        ("shipping-costs#2", "Standard shipping")]
    assert passages[1].text == "Express costs $12.95. It takes 1-2 business days"
    assert passages[1].url == "/help/shipping-costs"
    assert passages[1].search_text().startswith("Shipping costs Express shipping Express")


@pytest.mark.parametrize("name,text,message", [
    ("a.md", "Just text, no front matter.", r"a\.md: no front matter"),
    ("b.md", "---\ntitle: [unclosed\n---\nText.", r"b\.md: the front matter is not valid YAML"),
    ("c.md", "---\ntitle: C\nslug: c\n---\nText.", r"c\.md: front matter lacks \['tags', "),
    ("e.md", GOOD.replace("slug: shipping-costs", "slug: E_Bad"), r"e\.md: slug 'E_Bad' is not"),
    ("f.md", GOOD.replace("slug: shipping-costs", "slug: g"), r"f\.md: slug 'g' differs from"),
    ("h.md", GOOD.replace("slug: shipping-costs", "slug: h").replace("[delivery, costs]",
                                                                     "delivery"),
     r"h\.md: tags 'delivery' is not a list"),
    ("i.md", GOOD.replace("slug: shipping-costs", "slug: i").replace("2026-12-01", "soon"),
     r"i\.md: last_reviewed 'soon' is not a date"),
    ("j.md", "---\ntitle: J\nslug: j\ntags: [x]\nlast_reviewed: 2026-12-01\n---\n\n  \n",
     r"j\.md: the article has no text"),
    ("k.md", GOOD.replace("slug: shipping-costs", "slug: k").replace(
        "tags:", "products: kettle\ntags:"), r"k\.md: products 'kettle' is not a list"),
    ("m.md", GOOD.replace("slug: shipping-costs", "slug: m").replace(
        "tags:", "products: [kettle, '  ']\ntags:"), r"m\.md: products \['kettle', '  '\]"),
    ("n.md", GOOD.replace("slug: shipping-costs", "slug: n") + "\n## Express shipping\nAgain.\n",
     r"n\.md: the section heading\(s\) \['Express shipping'\] appear more than once"),
])
def test_a_malformed_article_is_an_error_naming_the_file_and_the_fix(tmp_path, name, text,
                                                                     message):
    write(tmp_path, name, text)
    with pytest.raises(KnowledgeError, match=message):
        load_articles(tmp_path)


def test_a_product_guide_names_its_product_in_its_passages(tmp_path):
    write(tmp_path, "kettle-guide.md", GOOD.replace("slug: shipping-costs", "slug: kettle-guide")
          .replace("tags:", "products: [Kettle, Electric   Kettle]\ntags:"))
    [article] = load_articles(tmp_path)
    assert article.products == ("kettle", "electric kettle")  # lower-cased, spaces folded
    assert {p.products for p in split_passages(article)} == {("kettle", "electric kettle")}
    assert load_articles(ROOT / "data" / "knowledge")[0].products == ()  # not a product guide


def test_a_duplicate_slug_names_both_files(tmp_path):
    write(tmp_path, "shipping-costs.md", GOOD)
    (tmp_path / "sub").mkdir()
    write(tmp_path / "sub", "shipping-costs.md", GOOD)
    with pytest.raises(KnowledgeError, match=r"sub/shipping-costs\.md: slug 'shipping-costs' "
                                             r"is also used by shipping-costs\.md"):
        load_articles(tmp_path)


def test_notes_are_ignored_and_an_empty_or_missing_folder_is_an_error(tmp_path):
    write(tmp_path, "_notes.md", "not an article")
    with pytest.raises(KnowledgeError, match="holds no .md article"):
        load_articles(tmp_path)
    with pytest.raises(KnowledgeError, match="does not exist"):
        load_articles(tmp_path / "nowhere")


def test_the_fingerprint_follows_the_articles(tmp_path):
    path = write(tmp_path, "shipping-costs.md", GOOD)
    before = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == before
    path.write_text(GOOD.replace("$12.95", "$13.95"))
    assert fingerprint(tmp_path) != before


def test_the_project_help_center_loads():
    articles = load_articles(ROOT / "data" / "knowledge")
    assert len(articles) >= 60
    passages = load_passages(ROOT / "data" / "knowledge")
    assert len({p.id for p in passages}) == len(passages) > 5 * len(articles)
    assert all(p.text for p in passages)


# --- Known questions (data/grounded/) ----------------------------------------------------

def test_the_projects_known_questions_name_sections_of_the_help_center():
    questions = load_known_questions(ROOT / "data" / "grounded")
    assert len(questions) >= 600  # no_answer.yml (written replies, no `articles:`) is skipped
    sections = {(p.slug, p.heading) for p in load_passages(ROOT / "data" / "knowledge")}
    assert all((q.slug, q.section) in sections for q in questions)


def test_every_section_of_the_help_center_has_a_known_question():
    """A section without one is found by BM25 and the dense passage alone; with one,
    a customer's paraphrase also votes for it (components/generator/retrieval.py)."""
    known = {(q.slug, q.section) for q in load_known_questions(ROOT / "data" / "grounded")}
    missing = [f"{p.slug}: {p.heading or '(opening paragraph)'}"
               for p in load_passages(ROOT / "data" / "knowledge")
               if (p.slug, p.heading) not in known]
    assert not missing, ("write a question for each in data/grounded/ (with its answer "
                         "copied from the section): " + "; ".join(missing))


def test_known_questions_are_read_from_a_folder_or_one_file(tmp_path):
    path = tmp_path / "returns.yml"
    path.write_text('articles:\n  - slug: how-to-return\n    pairs:\n'
                    '      - question: "how do i send it back"\n        section: ""\n'
                    '        answer: "Start a return in your account."\n'
                    '      - question: "is the label free"\n        section: "Labels"\n')
    (tmp_path / "no_answer.yml").write_text('no_answer:\n  - question: "hi"\n    answer: "Hi!"\n')
    expected = [KnownQuestion("how do i send it back", "how-to-return", "",
                              "Start a return in your account."),
                KnownQuestion("is the label free", "how-to-return", "Labels")]  # no answer
    assert load_known_questions(tmp_path) == expected
    assert load_known_questions(path) == expected
    before = questions_fingerprint(tmp_path)
    path.write_text(path.read_text().replace("free", "paid"))
    assert questions_fingerprint(tmp_path) != before


@pytest.mark.parametrize("text,missing", [
    ('articles:\n  - pairs:\n      - question: "q"\n', "slug"),
    ('articles:\n  - slug: a\n    pairs:\n      - section: "S"\n', "question"),
])
def test_a_malformed_known_question_names_its_file_and_entry(tmp_path, text, missing):
    (tmp_path / "bad.yml").write_text(text)
    with pytest.raises(KnowledgeError, match=rf"bad\.yml: article 0, pair 0 lacks '{missing}'"):
        load_known_questions(tmp_path)
    with pytest.raises(KnowledgeError, match="does not exist"):
        load_known_questions(tmp_path / "nowhere")
