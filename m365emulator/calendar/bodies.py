"""Event bodies as Exchange stores and returns them (NOTES.md, "Bodies").

Exchange does not hand a body back as it was sent:
- an HTML body is stored as a whole document: a fragment is wrapped in `<html><head>` (with the
  `Content-Type` meta) `</head><body>` … `</body></html>`, CRLF-separated, as the create example of
  user-post-events shows; a whole document gets the meta added to its head;
- a text body keeps its text, and is answered as HTML unless the client asks for text: escaped, its
  line breaks as `<br>`, inside Exchange's "converted from text" document;
- `Prefer: outlook.body-content-type="text"` answers any body as text (HTML converted: tags dropped,
  breaks and block ends as line breaks, entities decoded), `"html"` as HTML; either is confirmed in
  `Preference-Applied`. Without it the body is HTML (event-get).
"""

from __future__ import annotations

import html
import re
from typing import Final

CONTENT_TYPE_META: Final = '<meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
_HTML_TAG: Final = re.compile(r"<html\b[^>]*>", re.I)
_HEAD_TAG: Final = re.compile(r"<head\b[^>]*>", re.I)
_CHARSET_META: Final = re.compile(r"<meta\b[^>]*charset", re.I)
_HIDDEN: Final = re.compile(r"<(script|style|head|title)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.S | re.I)
_BREAK: Final = re.compile(r"<br\b[^>]*>|</(p|div|li|tr|h[1-6]|table|ul|ol)\s*>", re.I)
_TAG: Final = re.compile(r"<[^>]+>")
_SOURCE_SPACE: Final = re.compile(r"[ \t\r\n\f]+")
_LINE_SPACE: Final = re.compile(r"[ \t\r\f\v\xa0]+")
_BLANK_LINES: Final = re.compile(r"\n{3,}")

_WRAP_HEAD: Final = f"<html>\r\n<head>\r\n{CONTENT_TYPE_META}\r\n</head>\r\n<body>\r\n"
_FROM_TEXT_HEAD: Final = (
    f"<html><head>{CONTENT_TYPE_META}\r\n"
    '<meta name="Generator" content="Microsoft Exchange Server">\r\n'
    "<!-- converted from text -->\r\n"
    "<style><!-- .EmailQuote { margin-left: 1pt; padding-left: 4pt; border-left: #800000 2px solid; } "
    "--></style></head>\r\n<body>\r\n"
    '<font size="2"><span style="font-size:11pt;"><div class="PlainText">'
)
_FROM_TEXT_TAIL: Final = "</div></span></font>\r\n</body>\r\n</html>\r\n"


def stored(content_type: str, content: str) -> str:
    """What Exchange keeps of a body written as `content_type` (`text` or `html`)."""
    if content_type != "html" or not content:
        return content
    if not _HTML_TAG.search(content):
        return f"{_WRAP_HEAD}{content}\r\n</body>\r\n</html>\r\n"
    if _CHARSET_META.search(content):
        return content
    head = _HEAD_TAG.search(content)
    if head is not None:
        return f"{content[: head.end()]}\r\n{CONTENT_TYPE_META}{content[head.end() :]}"
    opening = _HTML_TAG.search(content)
    assert opening is not None
    return f"{content[: opening.end()]}<head>\r\n{CONTENT_TYPE_META}\r\n</head>{content[opening.end() :]}"


def rendered(content_type: str, content: str, wanted: str | None) -> tuple[str, str]:
    """The body as answered: (contentType, content) in the `wanted` type (None: HTML, Graph's default)."""
    wanted = wanted if wanted in ("text", "html") else "html"
    if wanted == content_type:
        return content_type, content
    if wanted == "text":
        return "text", as_text(content)
    return "html", from_text(content)


def from_text(text: str) -> str:
    """Exchange's HTML for a text body (an empty body stays empty, as the delta example shows)."""
    if not text:
        return ""
    lines = html.escape(text, quote=False).replace("\r\n", "\n").split("\n")
    return _FROM_TEXT_HEAD + "<br>\r\n".join(lines) + _FROM_TEXT_TAIL


def as_text(markup: str) -> str:
    """The text of an HTML body: what Outlook shows, without markup."""
    flowing = _SOURCE_SPACE.sub(" ", _HIDDEN.sub("", markup))  # in HTML a line break in the source is a space
    text = _TAG.sub("", _BREAK.sub("\n", flowing))
    lines = (_LINE_SPACE.sub(" ", line).strip() for line in html.unescape(text).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def preview(content_type: str, content: str) -> str:
    """`bodyPreview`: the text, whitespace collapsed, 255 characters."""
    text = as_text(content) if content_type == "html" else content
    return " ".join(text.split())[:255]
