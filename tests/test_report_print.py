"""The weekly report in print: the demo's drift week (W43, the fullest) rendered to PDF by
WeasyPrint on A4 and Letter, then checked three ways that do not trust each other:

* pypdf reads the written file: page count, page size, and the position of every glyph, which
  must lie inside the page's content box (the margins stay empty);
* WeasyPrint's own layout boxes: no table, image or text box crosses the content box;
* poppler (`pdftoppm`) rasterises page 1: the right margin strip is blank paper.

Also: the first page carries the objectives table (not just the four tiles), no page is near
empty, at most two pages per model, and a second model starts its own page.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from PIL import Image
from pypdf import PdfReader

from monitor.config import load_config
from monitor.config.models import ReportConfig
from monitor.demo.replay import DemoResult
from monitor.demo.simulate import START, WEEKS
from monitor.engine.runtime import open_runtime
from monitor.report.data import WeeklyReport, build_report
from monitor.report.deliver import publish
from monitor.report.render import render_html
from monitor.report.weeks import parse_week

pytestmark = pytest.mark.slow
MM = 72 / 25.4
"""PDF points per millimetre."""
PAPER = {"A4": (210 * MM, 297 * MM), "Letter": (8.5 * 72, 11 * 72)}
MARGIN = {"top": 12 * MM, "right": 12 * MM, "bottom": 13 * MM, "left": 12 * MM}
"""The template's `@page` margins; the footer lives in the bottom margin."""
SLACK = 0.75
"""Points: rounding of glyph positions and anti-aliasing, far below any real overflow."""
W43 = "2026-W43"


@pytest.fixture(scope="module")
def report(demo_run: DemoResult) -> WeeklyReport:
    rt = open_runtime(load_config(demo_run.config_path), demo_run.directory)
    try:
        week = parse_week(W43, ZoneInfo("UTC"))
        return build_report(rt, week, START + timedelta(weeks=WEEKS))
    finally:
        rt.close()


@pytest.fixture(scope="module", params=["A4", "Letter"])
def printed(
    request: pytest.FixtureRequest, report: WeeklyReport, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str, Path]:
    from monitor.report.pdf import write_pdf

    paper = str(request.param)
    html = render_html(report, paper)
    target = tmp_path_factory.mktemp("print") / f"w43-{paper}.pdf"
    assert write_pdf(html, target) == target
    return paper, html, target


def glyphs(page: Any) -> list[tuple[float, float, str]]:
    """(x, y, text) of every text run pypdf finds, in PDF user space (origin bottom left)."""
    found: list[tuple[float, float, str]] = []

    def visit(text: str, cm: list[float], tm: list[float], *_: object) -> None:
        if text.strip():
            # The run's origin: the text matrix, then the current transformation matrix.
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            found.append((x, y, text))

    page.extract_text(visitor_text=visit)
    return found


def test_pages_have_the_paper_size_and_at_most_two_per_model(
    printed: tuple[str, str, Path], report: WeeklyReport
) -> None:
    paper, _, path = printed
    reader = PdfReader(path)
    assert 1 <= len(reader.pages) <= 2 * len(report.models)
    width, height = PAPER[paper]
    for page in reader.pages:
        box = page.mediabox
        assert float(box.width) == pytest.approx(width, abs=0.5)
        assert float(box.height) == pytest.approx(height, abs=0.5)


def test_the_first_page_holds_the_objectives_table_whole(
    printed: tuple[str, str, Path], report: WeeklyReport
) -> None:
    first = " ".join(PdfReader(printed[2]).pages[0].extract_text().split())
    assert "SLOs met" in first and "Mean time to resolve" in first
    for header in ("Good this week", "Target", "vs last week", "Error budget left"):
        assert header in first
    for line in report.slos:
        assert line.name in first
    overspent = [
        s.budget_left for s in report.slos if s.budget_left is not None and s.budget_left < 0
    ]
    assert overspent  # W43 overspends the drift SLO's budget: the cell that used to be cut off
    for left in overspent:
        assert f"overspent: {1 - left:.1f}× the allowed failures" in first


def test_every_glyph_lies_inside_the_content_box(printed: tuple[str, str, Path]) -> None:
    paper, _, path = printed
    width, height = PAPER[paper]
    left, right = MARGIN["left"] - SLACK, width - MARGIN["right"] + SLACK
    for number, page in enumerate(PdfReader(path).pages, start=1):
        runs = glyphs(page)
        assert len(runs) > 20, number
        for x, y, text in runs:
            assert left <= x <= right, (paper, number, x, text)
            assert 0 < y < height - MARGIN["top"] + SLACK, (paper, number, y, text)
        # pypdf gives each run's start; its end is checked by WeasyPrint's boxes below and
        # by the blank right margin in the raster test.


def box_edges(html: str) -> tuple[list[Any], list[tuple[int, str, float, float, float, float]]]:
    """WeasyPrint's pages and, for every laid-out box, its page and border-box edges."""
    import weasyprint  # type: ignore[import-untyped, import-not-found, unused-ignore]

    document = weasyprint.HTML(string=html).render()
    edges = []
    for number, page in enumerate(document.pages, start=1):
        for box in page._page_box.descendants():
            if getattr(box, "width", None) is None or getattr(box, "height", None) is None:
                continue
            if box.element_tag in {"html", "body", "main", "@page"} or not box.element_tag:
                continue
            x, y = box.border_box_x(), box.border_box_y()
            edges.append(
                (number, box.element_tag, x, y, x + box.border_width(), y + box.border_height())
            )
    return document.pages, edges


def test_no_table_chart_or_text_box_crosses_the_page_box(printed: tuple[str, str, Path]) -> None:
    paper, html, _ = printed
    pages, edges = box_edges(html)
    px = 96 / 72  # CSS pixels per point
    width, height = (v * px for v in PAPER[paper])
    left, right = MARGIN["left"] * px, width - MARGIN["right"] * px
    top, bottom = MARGIN["top"] * px, height - MARGIN["bottom"] * px
    tags = {tag for _, tag, *_ in edges}
    assert {"table", "td", "img", "p"} <= tags
    for number, tag, x0, y0, x1, y1 in edges:
        where = (paper, number, tag, round(x0), round(y0), round(x1), round(y1))
        assert left - 1 <= x0 and x1 <= right + 1, where
        assert top - 1 <= y0 and y1 <= bottom + 1, where
    images = [e for e in edges if e[1] == "img"]
    assert len(images) >= 5  # three SLI charts, budget and volume
    # No near-empty page: on each, the content reaches at least a third of the way down.
    for number in range(1, len(pages) + 1):
        lowest = max(y1 for n, _, _, _, _, y1 in edges if n == number)
        assert (lowest - top) / (bottom - top) > 1 / 3, (paper, number)


def test_the_right_margin_is_blank_paper_on_the_first_page(
    printed: tuple[str, str, Path], tmp_path: Path
) -> None:
    paper, _, path = printed
    pdftoppm = shutil.which("pdftoppm")
    assert pdftoppm, "pdftoppm is needed: apt-get install poppler-utils"
    dpi = 50
    subprocess.run(
        [
            pdftoppm,
            "-r",
            str(dpi),
            "-png",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            path,
            tmp_path / "p",
        ],
        check=True,
        timeout=120,
    )
    image = Image.open(tmp_path / "p.png").convert("L")
    margin = int(MARGIN["right"] / 72 * dpi) - 2
    strip = image.crop((image.width - margin, 0, image.width, image.height))
    assert min(strip.getdata()) >= 250, paper  # only white in the right margin
    body = image.crop((0, 0, image.width - margin, image.height))
    assert min(body.getdata()) < 100  # while the page itself has dark ink


def test_each_model_starts_a_page_and_keeps_to_two(report: WeeklyReport, tmp_path: Path) -> None:
    from monitor.report.pdf import write_pdf

    one = report.models[0]
    twin = dataclasses.replace(one, name="fraud-detector-eu")
    both = dataclasses.replace(report, models=[one, twin])
    path = write_pdf(render_html(both, "Letter"), tmp_path / "two.pdf")
    assert path is not None
    pages = [" ".join(p.extract_text().split()) for p in PdfReader(path).pages]
    assert len(pages) <= 2 * 2
    assert "All models" in pages[0] and "fraud-detector-eu" in pages[0]  # the summary table
    starts = [i for i, text in enumerate(pages) if "fraud-detector-eu team fraud" in text]
    assert len(starts) == 1 and starts[0] > 0
    assert "fraud-detector team fraud" not in pages[starts[0]]


def test_publish_prints_the_configured_paper(demo_run: DemoResult, tmp_path: Path) -> None:
    config = load_config(demo_run.config_path)
    letter = ReportConfig(out_dir=str(tmp_path), paper="letter")
    rt = open_runtime(config.model_copy(update={"report": letter}), demo_run.directory)
    try:
        published = publish(rt, parse_week(W43, ZoneInfo("UTC")), START + timedelta(weeks=WEEKS),
                            send=False)  # fmt: skip
    finally:
        rt.close()
    assert published.pdf is not None
    box = PdfReader(published.pdf).pages[0].mediabox
    assert (float(box.width), float(box.height)) == pytest.approx(PAPER["Letter"], abs=0.5)
    assert "size: Letter" in published.html.read_text(encoding="utf-8")
