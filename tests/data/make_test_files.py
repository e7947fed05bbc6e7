"""Writes the tiny real files the tests read, one or more per format and per bad case.

Run from the repo root: .venv/bin/python tests/data/make_test_files.py
The outputs are committed; the script is kept so they can be regenerated and read.
"""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).parent
FIXED_DATE = datetime(2026, 1, 1, tzinfo=timezone.utc)

PAIRS = [
    ("What are your opening hours?", "We are open Monday to Friday, 9 am to 6 pm."),
    ("Do you deliver?", "Yes, we deliver within 10 km for $5."),
    ("Can I pay by card?", "We accept Visa, Mastercard and cash; no cheques."),
]


def faq_files() -> None:
    with open(HERE / "faq.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["Question", "Answer"])
        w.writerows(PAIRS)
        w.writerow(["Is there parking?", ""])  # row 5: empty answer, reported and skipped
        w.writerow(["", ""])  # blank row: skipped silently
    # Excel-style: UTF-8 with BOM, semicolons, a title row above the header, other header names.
    text = "Café FAQ;;\nQ;Response;Category\n" + "".join(f'{q};"{a}";general\n' for q, a in PAIRS)
    text += "Où est le café ?;Rue de la Paix, près de l'opéra;\n"
    (HERE / "faq_bom_semicolon.csv").write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    # Windows-1252 and tabs, as older Excel exports.
    text = "FAQ\tANSWER\n" + "".join(f"{q}\t{a}\n" for q, a in PAIRS) + "Is the crème brûlée homemade?\tYes – every morning.\n"
    (HERE / "faq_cp1252.tsv").write_bytes(text.encode("cp1252"))
    # Multi-line answers and commas inside quotes.
    with open(HERE / "faq_multiline.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["question", "answer"])
        w.writerow(["What do you sell?", "Bread, cakes, and coffee.\nAlso sandwiches at lunch, from 11:30."])
        w.writerow(["Are you open on holidays?", "Closed on 25 December and 1 January, open otherwise."])
    (HERE / "faq.json").write_text(
        json.dumps({"faqs": [{"Question": q, "Answer": a} for q, a in PAIRS] + [{"Question": "Gift cards?", "Answer": ""}]}, indent=1),
        encoding="utf-8",
    )
    lines = [json.dumps({"q": q, "a": a}) for q, a in PAIRS] + ["{not json", json.dumps({"title": "no qa keys"})]
    (HERE / "faq.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (HERE / "no_qa_columns.csv").write_text("Name,Price\nBread,3.50\nCake,12.00\n", encoding="utf-8")

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "FAQ"
    sheet.append(["Question", "Answer"])
    for q, a in PAIRS:
        sheet.append([q, a])
    sheet.append(["How many tables do you have?", 12])  # a number cell
    notes = book.create_sheet("Notes")
    notes.append(["Internal notes, not an FAQ"])
    buf = io.BytesIO()
    book.save(buf)
    (HERE / "faq.xlsx").write_bytes(_fixed_zip(buf.getvalue()))


def _fixed_zip(data: bytes) -> bytes:
    """Rewrite a zip (xlsx/docx) with fixed timestamps so regenerating gives identical bytes."""
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=(2026, 1, 1, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                import re

                body = re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", b"2026-01-01T00:00:00Z", body)
            dst.writestr(fixed, body)
    return out.getvalue()


def pdf_files() -> None:
    from fpdf import FPDF

    def new_pdf() -> FPDF:
        pdf = FPDF()
        pdf.set_creation_date(FIXED_DATE)
        pdf.set_font("Helvetica", size=11)
        return pdf

    pdf = new_pdf()
    pdf.set_title("Bakery Policies")
    pages = [
        ("Returns", "Unopened goods can be returned within 7 days with a receipt. " * 3),
        ("Allergens", "All our bread is baked in a kitchen that also handles nuts and sesame. " * 3),
    ]
    for heading, body in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", "B", 14)
        pdf.cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=11)
        pdf.multi_cell(0, 6, body)
    pdf.output(str(HERE / "policies.pdf"))

    pdf = new_pdf()
    pdf.set_encryption(owner_password="owner", user_password="secret")
    pdf.add_page()
    pdf.multi_cell(0, 6, "Secret staff rota.")
    pdf.output(str(HERE / "encrypted.pdf"))

    # A scan: pages with drawings only, no text layer.
    pdf = new_pdf()
    pdf.add_page()
    pdf.set_fill_color(40, 40, 40)
    for i in range(20):
        pdf.rect(20, 20 + i * 8, 150 - i * 3, 4, style="F")
    pdf.output(str(HERE / "scanned.pdf"))

    good = (HERE / "policies.pdf").read_bytes()
    (HERE / "corrupt.pdf").write_bytes(good[: len(good) // 3])  # a download cut short


def text_files() -> None:
    (HERE / "prices.md").write_text(
        "# Price list\n\nAll prices include tax.\n\n## Bread\n\n| Item | Price |\n|---|---|\n"
        "| Sourdough loaf | $6.50 |\n| Baguette | $3.00 |\n\n## Cakes\n\nWhole cakes need 48 hours' notice.\n\n"
        "### Birthday cakes\n\nA 20 cm birthday cake costs $38.\n\n```\n# not a heading inside code\n```\n",
        encoding="utf-8",
    )
    (HERE / "notes.txt").write_text(
        "The bakery was founded in 1987 by Ana Ruiz.\n\nWe bake every morning from 4 am.\n", encoding="utf-8"
    )
    (HERE / "about.html").write_text(
        """<!doctype html><html><head><title>About Sunrise Bakery</title>
<style>body { font-family: sans-serif; } .NAVSTYLE { color: red; }</style>
<script>var trackingCode = "UA-SCRIPTCONTENT";</script></head>
<body>
<nav><a href="/">Home</a> <a href="/menu.html">Menu NAVLINK</a> <a href="/contact.html">Contact</a></nav>
<div class="cookie-banner" id="cookie-consent">We use cookies COOKIEBANNER to improve your experience. <button>Accept</button></div>
<main><article>
<h1>About Sunrise Bakery</h1>
<p>Sunrise Bakery was founded in 1987 by Ana Ruiz in a small shop on Harbour Street. She started with
one oven and a sourdough starter she still feeds every morning.</p>
<h2>Our team</h2>
<p>Today twelve bakers work in shifts, starting at 4 am, so the first loaves are on the shelves by
7 am. Head baker Tomas Berg joined in 2005 and created our rye bread.</p>
<h2>Our promise</h2>
<p>Everything is baked on site from organic flour milled within 50 km of the shop. Unsold bread goes
to the Harbour Street food bank every evening.</p>
</article></main>
<footer>Copyright 2026 Sunrise Bakery FOOTERTEXT. All rights reserved. <a href="/privacy.html">Privacy</a></footer>
</body></html>""",
        encoding="utf-8",
    )
    import docx

    d = docx.Document()
    d.core_properties.title = "Staff Handbook"
    d.add_heading("Staff Handbook", level=0)
    d.add_heading("Opening", level=1)
    d.add_paragraph("The first baker opens the shop at 4 am and switches on the ovens.")
    d.add_heading("Closing", level=1)
    d.add_paragraph("The last person out sets the alarm; the code is in the safe.")
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text, t.cell(0, 1).text = "Day", "Closing time"
    t.cell(1, 0).text, t.cell(1, 1).text = "Saturday", "2 pm"
    buf = io.BytesIO()
    d.save(buf)
    (HERE / "handbook.docx").write_bytes(_fixed_zip(buf.getvalue()))


def bad_files() -> None:
    rng = random.Random(7)
    junk = bytes(rng.randrange(256) for _ in range(2048))
    (HERE / "junk.pdf").write_bytes(junk)
    (HERE / "junk.csv").write_bytes(junk)
    (HERE / "junk.docx").write_bytes(junk)
    (HERE / "junk.xlsx").write_bytes(junk)
    (HERE / "empty.md").write_bytes(b"")
    (HERE / "bad.json").write_text('{"faqs": [{"question": "a", "answer": "b"},]', encoding="utf-8")
    (HERE / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + junk[:64])


if __name__ == "__main__":
    faq_files()
    pdf_files()
    text_files()
    bad_files()
    print("wrote", sorted(p.name for p in HERE.iterdir() if p.suffix != ".py"))
