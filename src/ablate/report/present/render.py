"""The report as Markdown and as one self-contained HTML page, from the same list of blocks.

A report is built once as a small document (headings, paragraphs, tables, figures) and written out
twice, so the two files cannot disagree. Text may use two inline marks, ``**bold**`` and
```code```; text that comes from outside (error messages, claim statements, ids) is wrapped in
:class:`Code` or :class:`Plain` so that it is shown as it is.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from typing import Sequence, Union

from ablate.report.present.figures import FigureOut
from ablate.report.judge.stats import (EXPLORATORY, INCONCLUSIVE, NOT_APPLICABLE, NOT_SUPPORTED, NOT_TESTED,
                                       SUPPORTED)


class Code(str):
    """Literal text shown as code (ids, keys, error messages)."""


class Plain(str):
    """Literal text shown as it is, with no inline marks interpreted."""


@dataclass(frozen=True)
class Link:
    """Text that links to ``href`` (a relative path or a URL)."""

    text: str
    href: str


@dataclass(frozen=True)
class Thumb:
    """A small picture inside a table cell: embedded in HTML, the file at ``path`` in Markdown;
    both link to ``href``."""

    png: bytes
    path: str
    alt: str
    href: str = ""


Inline = Union[str, Code, Plain, Link, Thumb]


@dataclass
class Heading:
    level: int
    text: Inline
    anchor: str = ""


@dataclass
class Para:
    parts: Sequence[Inline]  # concatenated


@dataclass
class Quote:
    text: Inline


@dataclass
class Bullets:
    items: Sequence[Sequence[Inline]]


@dataclass
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[Inline]]
    numeric: Sequence[bool] = ()  # right-align these columns


@dataclass
class Verdict:
    verdict: str
    text: Inline  # follows the badge


@dataclass
class Fig:
    figure: FigureOut


@dataclass
class CodeBlock:
    text: str


Block = Union[Heading, Para, Quote, Bullets, Table, Verdict, Fig, CodeBlock]


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> "Document":
        self.blocks.extend(blocks)
        return self


# ---------------------------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------------------------


def _md_inline(part: Inline, in_table: bool = False) -> str:
    if isinstance(part, Link):
        return f"[{_md_inline(Plain(part.text), in_table)}]({part.href})"
    if isinstance(part, Thumb):
        image = f"![{_md_inline(Plain(part.alt), in_table)}]({part.path})"
        return f"[{image}]({part.href})" if part.href else image
    if isinstance(part, Code):
        text = str(part).replace("`", "'").replace("\r", " ").replace("\n", " ")
        text = f"`{text}`" if text else ""
    elif isinstance(part, Plain):
        # Escape only what Markdown would act on here, so the raw file stays readable.
        text = re.sub(r"([\\`*])", r"\\\1", str(part))
        text = re.sub(r"(?<![A-Za-z0-9])_", r"\\_", text)
        text = re.sub(r"<(?=[A-Za-z/!])", r"&lt;", text)
        text = re.sub(r"\[(?=[^\]]*\]\()", r"\\[", text)
    else:
        text = re.sub(r"\[\[(.+?)\]\]", r"**\1**", str(part))
    if in_table:
        text = text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    return text


def _md_parts(parts: Sequence[Inline], in_table: bool = False) -> str:
    return "".join(_md_inline(p, in_table) for p in parts)


def to_markdown(doc: Document, figures_dir: str = "figures") -> str:
    out: list[str] = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            out += [f"{'#' * block.level} {_md_inline(block.text)}", ""]
        elif isinstance(block, Para):
            out += [_md_parts(block.parts), ""]
        elif isinstance(block, Quote):
            out += ["> " + _md_inline(block.text).replace("\n", "\n> "), ""]
        elif isinstance(block, Bullets):
            out += [f"- {_md_parts(item)}" for item in block.items] + [""]
        elif isinstance(block, Verdict):
            out += [f"**{block.verdict}** — {_md_inline(block.text)}", ""]
        elif isinstance(block, Table):
            align = [("---:" if i < len(block.numeric) and block.numeric[i] else "---")
                     for i in range(len(block.headers))]
            out.append("| " + " | ".join(_md_inline(h, True) for h in block.headers) + " |")
            out.append("|" + "|".join(align) + "|")
            for row in block.rows:
                cells = [_md_parts(c if isinstance(c, (list, tuple)) else [c], True) for c in row]
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        elif isinstance(block, Fig):
            f = block.figure
            out += [f"![{f.title}]({figures_dir}/{f.name})", "", f"*{f.caption}*", ""]
        elif isinstance(block, CodeBlock):
            out += ["```", block.text, "```", ""]
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------

_CSS = """
:root { --fg: #1d2330; --muted: #5b6475; --line: #d9dde5; --bg: #ffffff; --soft: #f5f7fa; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--soft); color: var(--fg);
       font: 15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1080px; margin: 0 auto; padding: 28px 36px 60px; background: var(--bg);
       min-height: 100vh; box-shadow: 0 0 0 1px var(--line); }
h1 { font-size: 28px; margin: 0 0 12px; }
h2 { font-size: 21px; margin: 34px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
h3 { font-size: 17px; margin: 22px 0 8px; }
p { margin: 8px 0; }
code { font: 13px/1.4 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; background: var(--soft);
       padding: 1px 4px; border-radius: 3px; word-break: break-word; }
pre { background: #20242c; color: #e8eaf0; padding: 12px 14px; border-radius: 6px; overflow-x: auto; }
pre code { background: none; color: inherit; padding: 0; }
blockquote { margin: 10px 0; padding: 8px 16px; border-left: 4px solid #8aa4d6; background: #f0f4fb;
             font-style: italic; }
table { border-collapse: collapse; margin: 10px 0 16px; font-size: 13.5px; width: auto; max-width: 100%; }
th, td { border: 1px solid var(--line); padding: 5px 9px; text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; }
td code { white-space: nowrap; word-break: normal; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr:nth-child(even) td { background: #fbfcfd; }
figure { margin: 14px 0 24px; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
img.thumb { width: 220px; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { color: var(--muted); font-size: 13.5px; margin-top: 4px; }
ul { margin: 6px 0 10px; padding-left: 22px; }
.badge { display: inline-block; padding: 1px 9px; border-radius: 11px; font-weight: 700; font-size: 13px;
         color: #fff; white-space: nowrap; }
.v-supported { background: #1f8a4c; }
.v-not-supported { background: #c0392b; }
.v-inconclusive { background: #8a6d1f; }
.v-no-effect { background: #2d6a9f; }
.v-not-tested { background: #7a7f88; }
.v-exploratory { background: #6b4f9f; }
.verdict { margin: 10px 0; padding: 10px 14px; border: 1px solid var(--line); border-radius: 6px;
           background: var(--soft); }
"""


def _badge(verdict: str) -> str:
    cls = {SUPPORTED: "v-supported", NOT_SUPPORTED: "v-not-supported", INCONCLUSIVE: "v-inconclusive",
           NOT_TESTED: "v-not-tested", NOT_APPLICABLE: "v-not-tested", EXPLORATORY: "v-exploratory"}.get(verdict)
    if cls is None:
        cls = "v-no-effect" if verdict.startswith("no effect") else "v-inconclusive"
    return f'<span class="badge {cls}">{html.escape(verdict)}</span>'


def _html_inline(part: Inline) -> str:
    if isinstance(part, Link):
        return f'<a href="{html.escape(part.href)}">{html.escape(part.text)}</a>'
    if isinstance(part, Thumb):
        data = base64.b64encode(part.png).decode("ascii")
        image = f'<img class="thumb" src="data:image/png;base64,{data}" alt="{html.escape(part.alt)}">'
        return f'<a href="{html.escape(part.href)}">{image}</a>' if part.href else image
    if isinstance(part, Code):
        return f"<code>{html.escape(str(part))}</code>" if str(part) else ""
    text = html.escape(str(part))
    if isinstance(part, Plain):
        return text
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"\[\[(.+?)\]\]", lambda m: _badge(html.unescape(m.group(1))), text)


def _html_parts(parts: Sequence[Inline] | Inline) -> str:
    if isinstance(parts, (str, Link, Thumb)):
        return _html_inline(parts)
    return "".join(_html_inline(p) for p in parts)


def _anchor(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def to_html(doc: Document) -> str:
    """One page, no external resource: CSS inline, figures as ``data:image/png;base64`` URIs."""
    body: list[str] = [f"<h1>{html.escape(doc.title)}</h1>"]
    for block in doc.blocks:
        if isinstance(block, Heading):
            level = min(max(block.level, 2), 6)
            anchor = block.anchor or _anchor(block.text)
            body.append(f'<h{level} id="{html.escape(anchor)}">{_html_inline(block.text)}</h{level}>')
        elif isinstance(block, Para):
            body.append(f"<p>{_html_parts(block.parts)}</p>")
        elif isinstance(block, Quote):
            body.append(f"<blockquote>{_html_inline(block.text)}</blockquote>")
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{_html_parts(item)}</li>" for item in block.items)
            body.append(f"<ul>{items}</ul>")
        elif isinstance(block, Verdict):
            body.append(f'<div class="verdict">{_badge(block.verdict)} {_html_inline(block.text)}</div>')
        elif isinstance(block, Table):
            num = list(block.numeric) + [False] * (len(block.headers) - len(block.numeric))
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in block.headers)
            rows = []
            for row in block.rows:
                cells = []
                for i, cell in enumerate(row):
                    cls = ' class="num"' if i < len(num) and num[i] else ""
                    cells.append(f"<td{cls}>{_html_parts(cell)}</td>")
                rows.append("<tr>" + "".join(cells) + "</tr>")
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")
        elif isinstance(block, Fig):
            f = block.figure
            data = base64.b64encode(f.png).decode("ascii")
            body.append(
                f'<figure id="fig-{html.escape(_anchor(f.name))}"><img src="data:image/png;base64,{data}" '
                f'alt="{html.escape(f.title)}"><figcaption><strong>{html.escape(f.title)}.</strong> '
                f"{html.escape(f.caption)}</figcaption></figure>"
            )
        elif isinstance(block, CodeBlock):
            body.append(f"<pre><code>{html.escape(block.text)}</code></pre>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(doc.title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        + "\n".join(body)
        + "\n</main>\n</body>\n</html>\n"
    )


def badge(verdict: str) -> str:
    """A verdict inside running text: bold in Markdown, a coloured badge in HTML."""
    return f"[[{verdict}]]"
