"""The report as PDF, when the optional WeasyPrint package is installed (the `pdf` extra,
`pip install 'vigil-monitor[pdf]'`, which also needs Pango: on Debian `libpango-1.0-0
libpangoft2-1.0-0 libharfbuzz-subset0`); without it, HTML only.

WeasyPrint is optional because it pulls in native libraries the daemon does not otherwise
need; the HTML carries the print CSS and the `@page` size, so "print to PDF" in a browser gives
the same pages.
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
    import weasyprint  # type: ignore[import-untyped, import-not-found, unused-ignore]

    weasyprint.HTML(string=html).write_pdf(str(path))
    return path
