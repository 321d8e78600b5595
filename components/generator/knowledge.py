"""The help center as data: Markdown articles in data/knowledge/, split into passages.

Each article is one topic, a Markdown file with YAML front matter::

    ---
    title: How long card refunds take to appear
    slug: card-refund-timing
    tags: [refunds, payments]
    last_reviewed: 2026-12-01
    products: [kettle]    # optional: only in a guide to one product (see below)
    ---
    A one-sentence direct answer.

    ## A section heading
    One to four sentences that make sense on their own.

A passage is the opening paragraph or one ``##`` section. Retrieval ranks passages,
not articles, so an answer is built from the few sentences that hold the fact, and
the citation still names the article (title and slug). Each passage's text for
retrieval is prefixed with the article title, since a section such as "Where
Kestrel Home delivers" is ambiguous alone.

Known questions (data/grounded/*.yml, ``articles: [{slug, pairs: [{question, section,
answer}]}]``) are customer questions written for one section of one article;
``load_known_questions`` reads them, with their answers, once: for the index
(retrieval.py, "Known questions"), the retrieval encoder's tuning (tuning.py) and the
built-in model's answers from passages (train.py, ``passage_examples``).
A file without ``articles:`` (no_answer.yml's written replies) is skipped.

A product guide lists under ``products`` the words customers call its product by
("blender", "air fryer", "earbud"): a question that names one product is not
answered from the guide to another (retrieval.py, "Products").

Files whose name starts with ``_`` or that are not ``.md`` are ignored (notes).
Front matter is parsed by python-frontmatter. Nothing here imports Rasa; the GPT
policy calls ``load_articles`` when ``rasa train`` builds the index.
"""
from __future__ import annotations

import datetime
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

REQUIRED_FIELDS = ("title", "slug", "tags", "last_reviewed")
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
HEADING = re.compile(r"^##\s+(.+?)\s*$", re.M)
HELP_URL = "/help/{slug}"  # where the web page serves an article (the citation link)


class KnowledgeError(ValueError):
    """An article is malformed; the message names the file, the problem and the fix."""


@dataclass(frozen=True)
class Article:
    """One help-center article."""

    slug: str  # unique, lowercase-hyphenated; the file is <slug>.md
    title: str
    tags: Tuple[str, ...]
    last_reviewed: str  # ISO date, YYYY-MM-DD
    body: str  # Markdown without the front matter
    path: str  # the file, relative to the knowledge folder
    # The words customers call the article's product by, lowercase and singular ("air
    # fryer"); empty for an article that is not the guide to one product.
    products: Tuple[str, ...] = ()

    @property
    def url(self) -> str:
        """The article's link in the help center (relative to the web page)."""
        return HELP_URL.format(slug=self.slug)


@dataclass(frozen=True)
class Passage:
    """A retrievable piece of an article: its opening paragraph or one section."""

    id: str  # "<slug>#<n>", n counting from 0 in the article
    slug: str
    title: str  # the article's title
    heading: str  # the section heading; "" for the opening paragraph
    text: str  # the section's text, one paragraph, Markdown emphasis kept
    products: Tuple[str, ...] = ()  # the article's ``products``

    @property
    def url(self) -> str:
        """The source article's link."""
        return HELP_URL.format(slug=self.slug)

    def search_text(self) -> str:
        """What retrieval indexes: title, heading and text."""
        return " ".join(part for part in (self.title, self.heading, self.text) if part)


def _fail(path: Path, problem: str, fix: str) -> KnowledgeError:
    return KnowledgeError(f"Help-center article {path}: {problem}. {fix}")


def parse_article(path: Path, root: Path) -> Article:
    """Reads one article file.

    Raises:
        KnowledgeError: on broken or missing front matter, a missing or mistyped
            field, a slug that is not lowercase-hyphenated or does not match the
            file name, an empty body, or two sections with the same heading.
    """
    import frontmatter  # noqa: PLC0415 - only `rasa train` and the tools read articles
    import yaml  # noqa: PLC0415 - the parser frontmatter uses; its error type

    text = path.read_text(encoding="utf-8")
    if not text.lstrip().startswith("---"):
        raise _fail(path, "no front matter", "Start the file with a `---` block holding "
                    f"{', '.join(REQUIRED_FIELDS)}, closed by `---`")
    try:
        post = frontmatter.loads(text)
    except yaml.YAMLError as e:
        raise _fail(path, f"the front matter is not valid YAML ({e})",
                    "Fix the YAML between the two `---` lines") from e
    meta: Dict = dict(post.metadata)
    missing = [f for f in REQUIRED_FIELDS if meta.get(f) in (None, "", [])]
    if missing:
        raise _fail(path, f"front matter lacks {missing}",
                    f"Every article needs {', '.join(REQUIRED_FIELDS)}")
    slug = meta["slug"]
    if not isinstance(slug, str) or not SLUG.match(slug):
        raise _fail(path, f"slug {slug!r} is not lowercase words joined by hyphens",
                    "Use e.g. `slug: card-refund-timing`")
    if path.stem != slug:
        raise _fail(path, f"slug {slug!r} differs from the file name",
                    f"Rename the file to {slug}.md or change the slug")
    tags = meta["tags"]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise _fail(path, f"tags {tags!r} is not a list of words", "Use e.g. `tags: [refunds]`")
    reviewed = meta["last_reviewed"]
    if isinstance(reviewed, datetime.date):
        reviewed = reviewed.isoformat()
    try:
        datetime.date.fromisoformat(str(reviewed))
    except ValueError as e:
        raise _fail(path, f"last_reviewed {reviewed!r} is not a date",
                    "Use YYYY-MM-DD, e.g. `last_reviewed: 2026-12-01`") from e
    products = meta.get("products") or []
    if not isinstance(products, list) or not all(isinstance(p, str) and p.strip()
                                                 for p in products):
        raise _fail(path, f"products {products!r} is not a list of product names",
                    "Use e.g. `products: [blender, aero blender]`, or leave the field out "
                    "in an article that is not the guide to one product")
    if not post.content.strip():
        raise _fail(path, "the article has no text", "Write the answer below the front matter, "
                    "or delete the file")
    headings = HEADING.findall(post.content)
    repeated = sorted({h for h in headings if headings.count(h) > 1})
    if repeated:
        raise _fail(path, f"the section heading(s) {repeated} appear more than once",
                    "Give each `## ` section a heading of its own or merge the sections: a "
                    "known question (data/grounded) names its section by the heading")
    return Article(slug=slug, title=str(meta["title"]).strip(), tags=tuple(tags),
                   last_reviewed=str(reviewed), body=post.content.strip(),
                   path=str(path.relative_to(root)),
                   products=tuple(" ".join(p.lower().split()) for p in products))


def article_files(folder: Path) -> List[Path]:
    """The article files of a knowledge folder, sorted (notes starting with ``_`` skipped)."""
    return sorted(p for p in Path(folder).rglob("*.md") if not p.name.startswith("_"))


def load_articles(folder: Path) -> List[Article]:
    """Every article in ``folder``, sorted by file name.

    Raises:
        KnowledgeError: if the folder is missing or holds no article, if any
            article is malformed (see ``parse_article``), or if two articles
            share a slug.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise KnowledgeError(f"Help-center folder {folder} does not exist. Create it with "
                             f"Markdown articles, or set the GPT policy's `knowledge` to null.")
    files = article_files(folder)
    if not files:
        raise KnowledgeError(f"Help-center folder {folder} holds no .md article.")
    articles, seen = [], {}
    for path in files:
        article = parse_article(path, folder)
        if article.slug in seen:
            raise _fail(path, f"slug {article.slug!r} is also used by {seen[article.slug]}",
                        "Every article needs its own slug")
        seen[article.slug] = article.path
        articles.append(article)
    return articles


def split_passages(article: Article) -> List[Passage]:
    """The article's opening paragraph(s) and each ``##`` section, as passages.

    Inside a section, lines are joined into one paragraph; list bullets and
    blank lines become sentence breaks.
    """
    parts = HEADING.split(article.body)
    # parts: [opening, heading1, text1, heading2, text2, ...]
    sections = [("", parts[0])] + list(zip(parts[1::2], parts[2::2], strict=True))
    passages = []
    for heading, text in sections:
        flat = _flatten(text)
        if flat:
            passages.append(Passage(id=f"{article.slug}#{len(passages)}", slug=article.slug,
                                    title=article.title, heading=heading.strip(), text=flat,
                                    products=article.products))
    return passages


def _flatten(markdown: str) -> str:
    lines = [re.sub(r"^\s*(?:[-*]|\d+\.)\s+", "", line).strip() for line in markdown.splitlines()]
    out: List[str] = []
    for line in lines:
        if not line:
            continue
        if out and not out[-1].endswith((".", "!", "?", ":")):
            out[-1] += "."
        out.append(line)
    return " ".join(out)


def load_passages(folder: Path) -> List[Passage]:
    """All passages of all articles in ``folder`` (see ``load_articles`` for errors)."""
    return [p for a in load_articles(folder) for p in split_passages(a)]


def fingerprint(folder: Path) -> str:
    """sha256 over the article files' names and bytes: changes when any article does."""
    return _digest(article_files(Path(folder)))


def _digest(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def by_slug(articles: Sequence[Article]) -> Dict[str, Article]:
    """``{slug: article}``."""
    return {a.slug: a for a in articles}


@dataclass(frozen=True)
class KnownQuestion:
    """A customer question written for one section of an article (data/grounded/)."""

    question: str
    slug: str
    section: str  # the heading of the passage that answers it; "" for the opening paragraph
    answer: str = ""  # the written answer, from that passage's facts only; "" when none


def known_question_files(folder: Path) -> List[Path]:
    """The ``*.yml`` files of ``folder``, sorted (a file path is read alone)."""
    folder = Path(folder)
    return [folder] if folder.is_file() else sorted(folder.glob("*.yml"))


def load_known_questions(folder: Path) -> List[KnownQuestion]:
    """Every ``articles: [{slug, pairs: [{question, section, answer}]}]`` question under
    ``folder``, with its written answer ("" when the pair has none).

    Raises:
        KnowledgeError: if ``folder`` does not exist, or an entry lacks its slug,
            question or section (the message names the file and entry).
    """
    import yaml  # noqa: PLC0415 - only where the index is built

    if not Path(folder).exists():
        raise KnowledgeError(f"Known questions: {folder} does not exist. Point the GPT policy's "
                             f"`questions` at the folder of grounded questions, or set it to null.")
    questions = []
    for path in known_question_files(folder):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for i, article in enumerate(data.get("articles") or []):
            for j, pair in enumerate((article or {}).get("pairs") or []):
                try:
                    questions.append(KnownQuestion(str(pair["question"]), str(article["slug"]),
                                                   str(pair.get("section") or ""),
                                                   str(pair.get("answer") or "").strip()))
                except (KeyError, TypeError) as e:
                    raise KnowledgeError(
                        f"Known questions {path}: article {i}, pair {j} lacks {e}. Each article "
                        f"needs a slug, each pair a question (and a section heading, or \"\" "
                        f"for the opening paragraph).") from e
    return questions


def questions_fingerprint(folder: Path) -> str:
    """sha256 over the known-question files' names and bytes."""
    return _digest(known_question_files(folder))
