"""The help center as web pages: the articles of data/knowledge/ rendered to static HTML.

A reply answered from the help center cites its article as
``<help_center_url>/<slug>`` (``answers.citation``); these pages are what that link
opens. ``make help-pages`` writes them into webchat/help/, which the page server of
``make serve`` serves, so the demo's links (endpoints.yml: ``help_center_url:
http://localhost:8080/help``) open the cited article. In production, publish the
folder where ``help_center_url`` points::

    python -m components.generator.help_pages --knowledge data/knowledge --out webchat/help

Writes ``<out>/<slug>/index.html`` per article (title, last reviewed date, the body,
a link back to the index) and ``<out>/index.html``, every article by title. Markdown
is rendered by Python-Markdown (installed with tensorboard, pinned in
constraints.txt) with raw HTML off, so HTML in an article shows as text; a link or
image whose URL is not http(s), mailto or relative loses it. Titles and dates are
escaped. Nothing here imports Rasa.
"""
from __future__ import annotations

import argparse
import html
import re
import shutil
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import markdown
from markdown.treeprocessors import Treeprocessor

from components.generator.knowledge import SLUG, Article, KnowledgeError, load_articles

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: http:">
<title>{title} - Kestrel Home help center</title>
<style>
body {{ max-width: 44rem; margin: 2rem auto; padding: 0 1rem; color: #1d2329;
       font: 16px/1.55 system-ui, sans-serif; }}
a {{ color: #1f4e5f; }} .reviewed {{ color: #56636e; font-size: 14px; }}
</style>
</head>
<body>
{content}
</body>
</html>
"""
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
SAFE_SCHEMES = ("http", "https", "mailto")


def safe_url(url: str) -> bool:
    """Whether a link may keep ``url``: http(s), mailto or relative.

    Judged as a browser reads the attribute: entities decoded, and with control
    characters and whitespace removed (``java&#9;script:`` is ``javascript:``).
    """
    plain = re.sub(r"[\x00-\x20\x7f]", "", html.unescape(url))
    scheme = _SCHEME.match(plain)
    return scheme is None or scheme[1].lower() in SAFE_SCHEMES


class _SafeLinks(Treeprocessor):
    """Drops the URL of a link or image that ``safe_url`` refuses."""

    def run(self, root) -> None:
        for tag, attribute in (("a", "href"), ("img", "src")):
            for element in root.iter(tag):
                if not safe_url(element.get(attribute, "")):
                    del element.attrib[attribute]


def render_markdown(text: str) -> str:
    """An article's Markdown as HTML, with raw HTML shown as text and unsafe links dropped."""
    md = markdown.Markdown(output_format="html")
    md.preprocessors.deregister("html_block")  # block-level raw HTML
    md.inlinePatterns.deregister("html")  # inline raw HTML
    md.treeprocessors.register(_SafeLinks(md), "safe_links", 0)  # after the inline patterns
    return md.convert(text)


def article_page(article: Article) -> str:
    """The page of one article, served at ``<help_center_url>/<slug>/``."""
    title = html.escape(article.title)
    content = (f'<p><a href="../">All help articles</a></p>\n<h1>{title}</h1>\n'
               f'<p class="reviewed">Last reviewed: <time datetime="'
               f'{html.escape(article.last_reviewed)}">{html.escape(article.last_reviewed)}'
               f"</time></p>\n{render_markdown(article.body)}")
    return PAGE.format(title=title, content=content)


def index_page(articles: Sequence[Article]) -> str:
    """The help center's front page: every article, by title."""
    items = "\n".join(f'<li><a href="{html.escape(a.slug)}/">{html.escape(a.title)}</a></li>'
                      for a in sorted(articles, key=lambda a: (a.title.casefold(), a.slug)))
    content = f"<h1>Kestrel Home help center</h1>\n<ul>\n{items}\n</ul>"
    return PAGE.format(title="All articles", content=content)


def build(knowledge: Path, out: Path) -> List[Path]:
    """Writes the pages of every article in ``knowledge`` and the index into ``out``.

    Pages of articles that no longer exist are removed (a folder named like a slug
    holding only an index.html); nothing else in ``out`` is touched. Returns the
    files written, the index last.

    Raises:
        KnowledgeError: if the folder or an article is malformed (``load_articles``).
        OSError: if ``out`` cannot be written.
    """
    articles = load_articles(Path(knowledge))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    slugs = {a.slug for a in articles}
    for folder in out.iterdir():
        if (folder.is_dir() and folder.name not in slugs and SLUG.match(folder.name)
                and [p.name for p in folder.iterdir()] == ["index.html"]):
            shutil.rmtree(folder)
    written = []
    for article in articles:
        page = out / article.slug / "index.html"
        page.parent.mkdir(exist_ok=True)
        page.write_text(article_page(article), encoding="utf-8")
        written.append(page)
    index = out / "index.html"
    index.write_text(index_page(articles), encoding="utf-8")
    return [*written, index]


def main(argv: Optional[List[str]] = None) -> None:
    """Command-line entry point; ``--help`` lists the options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--knowledge", default="data/knowledge", help="the articles' folder")
    parser.add_argument("--out", default="webchat/help", help="the folder to write the pages to")
    args = parser.parse_args(argv)
    try:
        written = build(Path(args.knowledge), Path(args.out))
    except KnowledgeError as e:
        sys.exit(f"error: {e}")
    print(f"Wrote {len(written) - 1} article pages and the index to {args.out}/")


if __name__ == "__main__":
    main()
