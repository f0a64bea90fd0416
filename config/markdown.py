"""Markdown from LLMs and users → safe HTML, rendered on the server.

Results, step outputs and artifacts are written by a model that may have read hostile web pages,
so their text is never trusted:

1. markdown-it-py parses CommonMark plus tables, strikethrough, task lists and `$…$` math, with
   raw HTML *disabled* (an LLM's `<script>` becomes visible text) and markdown-it's own link
   check (no `javascript:`, `vbscript:`, `file:` or non-image `data:` URLs);
2. fenced code is highlighted by Pygments into CSS classes (`static/css/pygments.css`); Mermaid
   fences stay code, since no diagram library is shipped;
3. nh3 then keeps only the tags and attributes this renderer produces, so even a bug in the
   steps above cannot let a script, an event handler, an iframe or a hostile URL through.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import nh3
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from mdit_py_plugins.tasklists import tasklists_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import JsonLexer, get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

# The CSS class of every highlighted block; static/css/pygments.css styles it.
HIGHLIGHT_CLASS = "highlight"
LIGHT_STYLE = "default"
DARK_STYLE = "github-dark"
# Beyond this many characters a code block is shown plain: highlighting is not worth the time.
HIGHLIGHT_LIMIT = 200_000

_TAGS = {
    "a", "blockquote", "br", "code", "del", "div", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "img", "input", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody",
    "td", "th", "thead", "tr", "ul",
}  # fmt: skip
_ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "code": {"class"},
    "pre": {"class"},
    "span": {"class"},
    "div": {"class"},
    "ul": {"class"},
    "ol": {"start", "class"},
    "li": {"class"},
    "th": {"style"},
    "td": {"style"},
    "input": {"class", "type", "checked", "disabled"},
}
_URL_SCHEMES = {"http", "https", "mailto", "data"}
_DATA_IMAGE = re.compile(r"^data:image/(png|gif|jpeg|webp);", re.IGNORECASE)
# Classes the renderer itself writes. Any other class is dropped, so hostile text cannot borrow
# the page's own classes (an overlay, a fake toast) to disguise itself.
_CLASSES = {
    HIGHLIGHT_CLASS, "contains-task-list", "task-list-item", "task-list-item-checkbox",
    "math", "inline", "block", *(name for name in STANDARD_TYPES.values() if name),
}  # fmt: skip
_LANGUAGE_CLASS = re.compile(r"^language-[a-z0-9+#_.-]{1,40}$")


def _filter_attribute(tag: str, attribute: str, value: str) -> str | None:
    # `data:` is allowed by the scheme list only so that inline raster images survive; anywhere
    # else (a link, an SVG image that could carry script) it is dropped.
    if attribute in {"href", "src"} and value.strip().lower().startswith("data:"):
        if tag == "img" and attribute == "src" and _DATA_IMAGE.match(value.strip()):
            return value
        return None
    if tag == "input" and attribute == "type" and value != "checkbox":
        return None
    if attribute == "class":
        kept = [
            name
            for name in value.split()
            if name in _CLASSES or (tag == "code" and _LANGUAGE_CLASS.match(name))
        ]
        return " ".join(kept) or None
    return value


def _highlight(code: str, language: str, _attrs: Any) -> str:
    name = (language or "").strip().split(maxsplit=1)[0].lower() if language else ""
    if not name or name == "mermaid" or len(code) > HIGHLIGHT_LIMIT:
        return ""  # markdown-it then escapes the code itself
    try:
        lexer = get_lexer_by_name(name)
    except ClassNotFound:
        return ""
    body = highlight(code, lexer, HtmlFormatter(nowrap=True))
    return f'<pre class="{HIGHLIGHT_CLASS}"><code class="language-{name}">{body}</code></pre>\n'


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    parser = MarkdownIt(
        "commonmark", {"html": False, "linkify": False, "typographer": False}
    ).enable(["table", "strikethrough"])
    parser.options["highlight"] = _highlight
    tasklists_plugin(parser)
    # Math is shown as its TeX source (no math renderer is shipped), marked up for styling.
    dollarmath_plugin(parser, allow_space=False, double_inline=False)
    return parser


def sanitize_html(html: str) -> str:
    """Keep only the markup this module produces; links open nothing with the page's rights."""
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes=_URL_SCHEMES,
        attribute_filter=_filter_attribute,
        filter_style_properties={"text-align"},
        link_rel="noopener noreferrer nofollow",
        strip_comments=True,
    )


def render_markdown(text: str | None) -> SafeString:
    """Markdown text as sanitized HTML, safe to put into a template (empty for no text)."""
    if not text:
        return mark_safe("")
    return mark_safe(sanitize_html(_parser().render(str(text))))


def render_json(value: Any) -> SafeString:
    """A JSON value pretty-printed and highlighted, as sanitized HTML."""
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str, sort_keys=False)
    if len(text) > HIGHLIGHT_LIMIT:
        body = nh3.clean_text(text)
    else:
        body = highlight(text, JsonLexer(), HtmlFormatter(nowrap=True))
    return mark_safe(
        sanitize_html(
            f'<pre class="{HIGHLIGHT_CLASS}"><code class="language-json">{body}</code></pre>'
        )
    )


def render_value(value: Any) -> SafeString:
    """A step's result or input: text as Markdown, anything else as pretty JSON."""
    if value is None:
        return mark_safe("")
    if isinstance(value, str):
        return render_markdown(value)
    return render_json(value)


def pygments_css() -> str:
    """The stylesheet of highlighted code for both themes (written to static/css/pygments.css).

    The dark rules follow the theme switch of the layout: an explicit `data-theme="dark"` on
    the root element, or the system preference when no theme was chosen.
    """
    light = _scoped_rules(LIGHT_STYLE)
    dark = _scoped_rules(DARK_STYLE)
    chosen = "\n".join(f':root[data-theme="dark"] {rule}' for rule in dark)
    system = "\n".join(f'  :root:not([data-theme="light"]) {rule}' for rule in dark)
    return (
        "/* Generated by config.markdown.pygments_css(); do not edit by hand. */\n"
        + f"/* Light: Pygments '{LIGHT_STYLE}'. */\n"
        + "\n".join(light)
        + "\n"
        + f"/* Dark: Pygments '{DARK_STYLE}'. */\n{chosen}\n"
        f"@media (prefers-color-scheme: dark) {{\n{system}\n}}\n"
    )


def _scoped_rules(style: str) -> list[str]:
    # Only the rules under the highlight class: line-number and bare `pre` rules would leak
    # into the rest of the page.
    rules = HtmlFormatter(style=style).get_style_defs(f".{HIGHLIGHT_CLASS}").splitlines()
    return [rule for rule in rules if rule.startswith(f".{HIGHLIGHT_CLASS}")]
