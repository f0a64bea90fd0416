"""Markdown rendering: rich output for what models write, and nothing that can run."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings

from config.markdown import (
    pygments_css,
    render_json,
    render_markdown,
    render_value,
    sanitize_html,
)

HOSTILE = [
    "<script>alert('x')</script>",
    '<img src="x" onerror="alert(1)">',
    '<iframe src="https://example.com"></iframe>',
    "[click](javascript:alert(1))",
    "[click](JAVASCRIPT:alert(1))",
    "[click](  javascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![x](javascript:alert(1))",
    "![x](data:image/svg+xml;base64,PHN2Zz48c2NyaXB0PmFsZXJ0KDEpPC9zY3JpcHQ+PC9zdmc+)",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
    '<div style="position:fixed">x</div>',
    '```"onmouseover=alert(1)\n code\n```',
]


class _Elements(HTMLParser):
    """The elements and attributes a browser would build from the HTML."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {name: value or "" for name, value in attrs}))


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_markdown_renders_as_inert_html(text):
    for tag, attributes in _Elements(render_markdown(text)).elements:
        assert tag not in {"script", "iframe", "svg", "div", "object", "embed", "style"}
        for name, value in attributes.items():
            assert not name.startswith("on")
            assert name != "style" or "position" not in value
            if name in {"href", "src"}:
                assert not value.strip().lower().startswith(("javascript:", "data:text"))
                assert "svg" not in value.lower()


def test_raw_html_from_a_model_is_shown_as_text():
    html = render_markdown("Hello <script>alert('x')</script> <b>bold</b>")
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html


def test_links_are_kept_and_open_nothing_with_the_page_rights():
    html = render_markdown("[docs](https://example.com/a?b=1) and <https://example.org>")
    assert 'href="https://example.com/a?b=1"' in html
    assert 'href="https://example.org"' in html
    assert html.count('rel="noopener noreferrer nofollow"') == 2


def test_inline_raster_images_are_allowed():
    html = render_markdown("![dot](data:image/png;base64,iVBORw0KGgo=)")
    assert '<img src="data:image/png;base64,iVBORw0KGgo=" alt="dot">' in html


def test_a_data_image_cannot_be_a_link():
    html = render_markdown("[x](data:image/png;base64,iVBORw0KGgo=)")
    assert "href" not in html


def test_tables_strikethrough_task_lists_and_math():
    html = render_markdown(
        "| a | b |\n|:--|--:|\n| 1 | 2 |\n\n~~gone~~\n\n- [x] done\n- [ ] todo\n\n$E=mc^2$"
    )
    assert '<th style="text-align:left">a</th>' in html
    assert '<td style="text-align:right">2</td>' in html
    assert "<s>gone</s>" in html
    assert 'type="checkbox"' in html and "checked" in html
    assert '<span class="math inline">E=mc^2</span>' in html


def test_code_is_highlighted_with_css_classes():
    html = render_markdown('```python\ndef f():\n    return "<x>"\n```')
    assert '<pre class="highlight"><code class="language-python">' in html
    assert '<span class="k">def</span>' in html
    assert "&lt;x&gt;" in html
    assert "style=" not in html


def test_unknown_and_mermaid_fences_stay_plain_code():
    html = render_markdown("```mermaid\ngraph TD; A-->B\n```\n\n```nosuchlang\nx < y\n```")
    assert '<code class="language-mermaid">graph TD; A--&gt;B' in html
    assert '<code class="language-nosuchlang">x &lt; y' in html


def test_the_sanitizer_keeps_only_the_renderer_s_own_classes():
    html = sanitize_html('<span class="toast k">x</span><code class="language-py modal">y</code>')
    assert html == '<span class="k">x</span><code class="language-py">y</code>'
    assert sanitize_html('<p class="overlay">z</p>') == "<p>z</p>"


def test_json_values_are_pretty_printed_and_escaped():
    html = render_json({"a": [1, 2], "b": "<script>alert(1)</script>"})
    assert '<pre class="highlight"><code class="language-json">' in html
    assert "<script" not in html
    assert "&lt;script&gt;" in html
    assert '\n<span class="w">  </span>' in html  # indented


def test_render_value_picks_markdown_for_text_and_json_otherwise():
    assert "<strong>hi</strong>" in render_value("**hi**")
    assert "language-json" in render_value({"x": 1})
    assert render_value(None) == ""
    assert render_markdown("") == ""


def test_the_committed_code_stylesheet_is_the_generated_one():
    committed = Path(settings.BASE_DIR, "static", "css", "pygments.css").read_text()
    assert committed == pygments_css(), (
        "static/css/pygments.css is stale: regenerate it with "
        '`uv run python -c "from config.markdown import pygments_css; '
        "print(pygments_css(), end='')\" > static/css/pygments.css`"
    )
    assert ':root[data-theme="dark"] .highlight' in committed
    assert "\npre {" not in committed
