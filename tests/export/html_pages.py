"""Checks over a folder of rendered pages without a browser: the HTML5 rules the weblog's templates must
keep (a strict subset of the standard: every element closed explicitly), and that every link resolves to
a file (and every #fragment to an id) inside the folder tree, with nothing pointing at another host."""

from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
# Elements that may only appear directly inside one of these parents.
PARENTS = {
    "li": {"ul", "ol", "menu"}, "dt": {"dl", "div"}, "dd": {"dl", "div"}, "tr": {"thead", "tbody", "tfoot", "table"},
    "td": {"tr"}, "th": {"tr"}, "thead": {"table"}, "tbody": {"table"}, "summary": {"details"},
    "option": {"select", "optgroup", "datalist"}, "legend": {"fieldset"}, "figcaption": {"figure"},
    "head": {"html"}, "body": {"html"}, "title": {"head"}, "meta": {"head"}, "link": {"head"},
}
# Block content that ends a <p> in HTML5 (so `<p><ul>` is not what it looks like).
NOT_IN_P = {"address", "article", "aside", "details", "div", "dl", "fieldset", "figure", "footer", "form", "h1",
            "h2", "h3", "h4", "h5", "h6", "header", "hr", "main", "nav", "ol", "p", "section", "table", "ul"}
INTERACTIVE = {"a", "button", "details", "input", "select", "textarea", "label"}
LINK_ATTRIBUTES = {"href", "src"}


@dataclass
class PageFacts:
    errors: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.facts = PageFacts()
        self.stack: list[str] = []
        self.seen_doctype = False
        self.seen_tag = False
        self.title_text = ""
        self.charset = False
        self.summary_expected = False

    def error(self, text: str) -> None:
        line, column = self.getpos()
        self.facts.errors.append(f"{line}:{column}: {text}")

    def handle_decl(self, decl: str) -> None:
        if self.seen_tag or decl.lower() != "doctype html":
            self.error(f"<!{decl}> must be the first thing, and be <!DOCTYPE html>")
        self.seen_doctype = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.seen_doctype and not self.seen_tag:
            self.error("no <!DOCTYPE html> before the first tag")
        self.seen_tag = True
        names = [name for name, _ in attrs]
        for name in {n for n in names if names.count(n) > 1}:
            self.error(f"<{tag}> has attribute {name} twice")
        values = dict(attrs)
        if self.summary_expected and tag != "summary":
            self.error("<details> must start with <summary>")
        self.summary_expected = tag == "details"
        parent = self.stack[-1] if self.stack else None
        if tag in PARENTS and parent not in PARENTS[tag]:
            self.error(f"<{tag}> inside <{parent}>")
        if tag in NOT_IN_P and "p" in self.stack:
            self.error(f"<{tag}> inside <p>")
        if tag in INTERACTIVE - {"details", "label"} and any(t in ("a", "button") for t in self.stack):
            self.error(f"interactive <{tag}> inside <a> or <button>")
        if tag == "html" and not values.get("lang"):
            self.error("<html> without lang")
        if tag == "meta" and (values.get("charset") or "").lower() == "utf-8":
            self.charset = True
        if tag == "img" and ("alt" not in values or not values.get("src")):
            self.error("<img> without alt or src")
        if "style" in values:
            self.error(f"inline style on <{tag}> (the Content-Security-Policy forbids it)")
        if tag == "script" and not values.get("src"):
            self.error("inline <script> (the Content-Security-Policy forbids it)")
        if any(name.startswith("on") for name in names):
            self.error(f"event handler attribute on <{tag}>")
        if (identifier := values.get("id")) is not None:
            if identifier in self.facts.ids or not identifier or any(c.isspace() for c in identifier):
                self.error(f"id {identifier!r} repeated, empty or with spaces")
            self.facts.ids.add(identifier)
        self.facts.links += [value for name, value in attrs if name in LINK_ATTRIBUTES and value is not None]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.error(f"</{tag}>: a void element has no end tag")
        elif not self.stack or self.stack[-1] != tag:
            self.error(f"</{tag}> closes <{self.stack[-1] if self.stack else 'nothing'}>")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1] == "title":
            self.title_text += data
        if self.stack and self.stack[-1] == "script" and data.strip():
            self.error("inline script content")
        if data.strip() and self.summary_expected:
            self.error("<details> must start with <summary>")

    def close(self) -> None:
        super().close()
        if self.stack:
            self.error(f"unclosed elements at the end: {self.stack}")
        if not self.charset:
            self.error('no <meta charset="utf-8">')
        if not self.title_text.strip():
            self.error("no (or an empty) <title>")


def page_facts(html: str) -> PageFacts:
    checker = _Checker()
    checker.feed(html)
    checker.close()
    return checker.facts


def broken_links(folder: Path) -> list[str]:
    """Every link of every page under `folder` that does not resolve: to a missing file, to an id missing
    from the page it names, or to another host or scheme. Links may leave `folder` (to the products)."""
    folder = folder.resolve()
    facts = {page: page_facts(page.read_text(encoding="utf-8")) for page in folder.rglob("*.html")}
    problems = []
    for page, page_fact in facts.items():
        for link in page_fact.links:
            parts = urlsplit(link)
            if parts.scheme == "data":
                continue
            if parts.scheme or parts.netloc:
                problems.append(f"{page.relative_to(folder)}: {link} leaves the folder tree (scheme or host)")
                continue
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page.resolve()
            if not target.is_file():
                problems.append(f"{page.relative_to(folder)}: {link} -> no such file")
            elif parts.fragment and target.suffix == ".html":
                ids = facts[target].ids if target in facts else page_facts(target.read_text()).ids
                if unquote(parts.fragment) not in ids:
                    problems.append(f"{page.relative_to(folder)}: {link} -> no id {parts.fragment!r}")
    return problems
