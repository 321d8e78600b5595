"""components/generator/help_pages.py: the help center's static pages, at the links citations give."""
from __future__ import annotations

import threading
import urllib.request
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components.generator.help_pages import build, main, render_markdown, safe_url
from components.generator.knowledge import KnowledgeError, load_articles

ROOT = Path(__file__).resolve().parents[3]

RETURNS = """---
title: Returns & refunds (30 days)
slug: return-policy
tags: [returns]
last_reviewed: 2026-11-30
---
Most items can be returned within **30 days** of delivery.

## Starting a return
<script>alert("returns")</script> Open [your orders](https://kestrelhome.example/orders),
or [this](javascript:alert(1)) does nothing.

- Pack the item
- Attach the label
"""
SHIPPING = """---
title: Shipping costs
slug: shipping-costs
tags: [shipping]
last_reviewed: 2026-12-01
---
Orders over $50 ship free. <img src=x onerror="alert(2)">
"""


class QuietFiles(SimpleHTTPRequestHandler):
    def log_message(self, *_) -> None:
        pass


@pytest.fixture
def knowledge(tmp_path):
    folder = tmp_path / "knowledge"
    folder.mkdir()
    (folder / "return-policy.md").write_text(RETURNS, encoding="utf-8")
    (folder / "shipping-costs.md").write_text(SHIPPING, encoding="utf-8")
    return folder


def test_one_page_per_article_and_an_index(knowledge, tmp_path):
    out = tmp_path / "help"
    written = build(knowledge, out)
    assert written == [out / "return-policy/index.html", out / "shipping-costs/index.html",
                       out / "index.html"]
    page = (out / "return-policy/index.html").read_text(encoding="utf-8")
    assert "<title>Returns &amp; refunds (30 days) - Kestrel Home help center</title>" in page
    assert "<h1>Returns &amp; refunds (30 days)</h1>" in page
    assert '<time datetime="2026-11-30">2026-11-30</time>' in page
    assert '<a href="../">All help articles</a>' in page  # back to the index
    assert "<strong>30 days</strong>" in page and "<h2>Starting a return</h2>" in page
    assert "<li>Pack the item</li>" in page
    assert '<a href="https://kestrelhome.example/orders">your orders</a>' in page
    index = (out / "index.html").read_text(encoding="utf-8")
    assert index.index("Returns &amp; refunds") < index.index("Shipping costs")  # by title
    assert '<a href="return-policy/">Returns &amp; refunds (30 days)</a>' in index
    assert '<a href="shipping-costs/">Shipping costs</a>' in index


def test_html_in_an_article_is_shown_as_text(knowledge, tmp_path):
    build(knowledge, tmp_path / "help")
    returns = (tmp_path / "help/return-policy/index.html").read_text(encoding="utf-8")
    assert '&lt;script&gt;alert("returns")&lt;/script&gt;' in returns
    assert "javascript:" not in returns and "<a>this</a>" in returns
    shipping = (tmp_path / "help/shipping-costs/index.html").read_text(encoding="utf-8")
    assert "<img" not in shipping and "&lt;img src=x" in shipping
    for page in (returns, shipping):
        assert page.count("<script") == 0


@pytest.mark.parametrize("url, safe", [
    ("https://kestrelhome.example/help", True), ("http://localhost:8080/", True),
    ("mailto:support@kestrelhome.example", True), ("../return-policy/", True), ("#top", True),
    ("javascript:alert(1)", False), (" JavaScript:alert(1)", False),
    ("&#106;avascript:alert(1)", False), ("java\tscript:alert(1)", False),
    ("data:text/html,<b>", False), ("vbscript:x", False),
])
def test_safe_url(url, safe):
    assert safe_url(url) is safe


def test_entity_encoded_javascript_links_lose_their_url():
    assert "href" not in render_markdown("[x](&#106;avascript:alert(1))")


def test_a_rebuild_removes_the_pages_of_deleted_articles_only(knowledge, tmp_path):
    out = tmp_path / "help"
    (out / "notes").mkdir(parents=True)
    (out / "notes/keep.txt").write_text("not ours")
    build(knowledge, out)
    (knowledge / "shipping-costs.md").unlink()
    build(knowledge, out)
    assert sorted(p.name for p in out.iterdir()) == ["index.html", "notes", "return-policy"]
    assert "shipping-costs" not in (out / "index.html").read_text(encoding="utf-8")


def test_a_malformed_article_fails_the_command_with_its_file(knowledge, tmp_path):
    (knowledge / "broken.md").write_text("no front matter", encoding="utf-8")
    with pytest.raises(SystemExit, match="broken.md"):
        main(["--knowledge", str(knowledge), "--out", str(tmp_path / "help")])
    with pytest.raises(KnowledgeError):
        build(knowledge, tmp_path / "help")


def test_every_article_of_the_help_center_is_served_where_its_citation_links(tmp_path, capsys):
    out = tmp_path / "webchat" / "help"
    main(["--knowledge", str(ROOT / "data/knowledge"), "--out", str(out)])
    slugs = [a.slug for a in load_articles(ROOT / "data/knowledge")]
    assert f"Wrote {len(slugs)} article pages" in capsys.readouterr().out
    index = (out / "index.html").read_text(encoding="utf-8")
    for slug in slugs:
        assert (out / slug / "index.html").is_file(), slug
        assert f'<a href="{slug}/">' in index, slug
    # As `make serve` serves webchat/: <help_center_url>/<slug> (no slash) opens the page.
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietFiles, directory=str(out.parent)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/help/{slugs[0]}"
        with urllib.request.urlopen(url, timeout=10) as resp:
            assert resp.status == 200 and resp.url == url + "/"  # redirected to the folder
            assert "All help articles" in resp.read().decode()
    finally:
        httpd.shutdown()
