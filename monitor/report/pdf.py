"""The report as PDF, when the optional WeasyPrint package is installed (`pip install
weasyprint`, which also needs the Pango system library); without it, HTML only.

WeasyPrint is optional because it pulls in native libraries the daemon does not otherwise
need; the HTML already carries print CSS, so "print to PDF" in any browser gives the same page.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def pdf_available() -> bool:
    return importlib.util.find_spec("weasyprint") is not None


def write_pdf(html: str, path: Path) -> Path | None:
    """Write `path` and return it, or return None when WeasyPrint is not installed."""
    if not pdf_available():
        return None
    import weasyprint  # type: ignore[import-not-found, unused-ignore]

    weasyprint.HTML(string=html).write_pdf(str(path))
    return path
