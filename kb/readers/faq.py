"""FAQ spreadsheets and files: CSV/TSV, Excel (.xlsx), JSON and JSONL.

Each row with a question and an answer becomes one `FaqPair`. Column names are matched the way
owners really write them (Question / Q / FAQ, Answer / A / Response, any case); the header may sit
below a title row. Rows with only one of the two are reported by row number and skipped.

    >>> read_csv(b"Q;A\\nOpen Sundays?;No, closed.", "faq.csv").faqs[0].answer
    'No, closed.'
"""

from __future__ import annotations

import csv
import io
import json
import re

from kb.errors import BadInput
from kb.readers.text import decode_text
from kb.records import Document, FaqPair

QUESTION_NAMES = {"question", "questions", "q", "faq", "faqs", "faq question", "query", "customer question"}
ANSWER_NAMES = {"answer", "answers", "a", "response", "responses", "reply", "faq answer", "solution"}
_HEADER_ROWS_SEARCHED = 5  # a title or a blank line may sit above the header


def _norm(name) -> str:
    return re.sub(r"[^a-z0-9]+", " ", str(name or "").lower()).strip()


def find_columns(header: list) -> tuple[int, int] | None:
    """Indexes of the question and answer columns in a header row, or None.

    >>> find_columns(["ID", "Question?", "Response"])
    (1, 2)
    """
    names = [_norm(h) for h in header]
    q = next((i for i, n in enumerate(names) if n in QUESTION_NAMES), None)
    a = next((i for i, n in enumerate(names) if n in ANSWER_NAMES), None)
    # Looser: "Customer's question", "Our answer".
    if q is None:
        q = next((i for i, n in enumerate(names) if "question" in n.split()), None)
    if a is None:
        a = next((i for i, n in enumerate(names) if "answer" in n.split()), None)
    if q is None or a is None or q == a:
        return None
    return q, a


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # Excel stores 12 as 12.0
    return str(value).strip()


def pairs_from_rows(rows: list[list], where: str, row_label: str = "row") -> tuple[list[FaqPair], list[str]]:
    """FAQ pairs from spreadsheet-like rows (the header somewhere in the first rows).

    Row numbers in messages and locations are 1-based as in the spreadsheet the owner sees.
    """
    for h in range(min(_HEADER_ROWS_SEARCHED, len(rows))):
        cols = find_columns(rows[h])
        if cols:
            break
    else:
        seen = ", ".join(repr(_cell(c)) for c in (rows[0] if rows else []) if _cell(c)) or "none"
        raise BadInput(
            f"no question and answer columns found in {where} (first row: {seen}). "
            "Name one column 'Question' and one 'Answer'."
        )
    qi, ai = cols
    pairs, warnings = [], []
    for n, row in enumerate(rows[h + 1 :], start=h + 2):
        q = _cell(row[qi]) if qi < len(row) else ""
        a = _cell(row[ai]) if ai < len(row) else ""
        if not q and not a:
            continue  # blank rows are normal at the end of a sheet
        if not q or not a:
            missing = "question" if not q else "answer"
            warnings.append(f"{row_label} {n}: the {missing} is empty; skipped")
            continue
        pairs.append(FaqPair(q, a, f"{row_label} {n}"))
    return pairs, warnings


def read_csv(data: bytes, name: str) -> Document:
    text = decode_text(data, "CSV file")
    if not text.strip():
        raise BadInput("the file has no text")
    try:
        sniffed = csv.Sniffer().sniff(text[:8192], delimiters=",;\t").delimiter
    except csv.Error:
        sniffed = ","
    # Sniffing guesses wrong on some files (commas inside answers); the delimiter that yields a
    # question and an answer column is the right one.
    error = None
    for delim in dict.fromkeys([sniffed, ",", ";", "\t"]):
        try:
            rows = list(csv.reader(io.StringIO(text), delimiter=delim))
            pairs, warnings = pairs_from_rows(rows, "the spreadsheet")
        except BadInput as e:
            error = error or e
            continue
        except csv.Error as e:
            raise BadInput(f"the CSV is malformed ({e})") from None
        return Document(kind="faq", title=name, faqs=pairs, warnings=warnings)
    raise error


def read_xlsx(data: bytes, name: str) -> Document:
    import zipfile

    import openpyxl

    from kb.readers import check_zip

    check_zip(data, "Excel .xlsx")
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError):
        raise BadInput("this is not a readable Excel .xlsx file: it may be damaged, password-protected or another kind "
                       "of file renamed to .xlsx. Open it in Excel and save it again as .xlsx, without a password") from None
    pairs, warnings, errors = [], [], []
    try:
        sheets = book.worksheets
        for sheet in sheets:
            rows = [list(r) for r in sheet.iter_rows(values_only=True)]
            label = f"{sheet.title} row" if len(sheets) > 1 else "row"
            try:
                p, w = pairs_from_rows(rows, f"sheet '{sheet.title}'", label)
            except BadInput as e:
                errors.append((sheet.title, str(e)))
                continue
            pairs += p
            warnings += w
    finally:
        book.close()
    if not pairs and errors:
        raise BadInput(errors[0][1])
    # Extra sheets without Q/A columns (notes, prices) are worth a mention, not a failure.
    warnings += [f"sheet '{title}' has no question and answer columns; skipped" for title, _ in errors]
    return Document(kind="faq", title=name, faqs=pairs, warnings=warnings)


def _pair_from_object(obj, label: str) -> tuple[FaqPair | None, str | None]:
    if not isinstance(obj, dict):
        return None, f"{label}: not an object with question and answer keys; skipped"
    keys = list(obj)
    cols = find_columns(keys)
    if not cols:
        return None, f"{label}: no question and answer keys (has {', '.join(map(str, keys)) or 'none'}); skipped"
    raw_q, raw_a = obj[keys[cols[0]]], obj[keys[cols[1]]]
    if isinstance(raw_q, (list, dict)) or isinstance(raw_a, (list, dict)):
        return None, f"{label}: the question and the answer must be text, not a list or an object; skipped"
    q, a = _cell(raw_q), _cell(raw_a)
    if not q and not a:
        return None, None
    if not q or not a:
        return None, f"{label}: the {'question' if not q else 'answer'} is empty; skipped"
    return FaqPair(q, a, label), None


def _collect(items: list[tuple[str, object]], title: str) -> Document:
    """FAQ pairs from (label, object) items, e.g. ("item 3", {...}) or ("line 7", {...})."""
    pairs, warnings = [], []
    for label, obj in items:
        pair, warning = _pair_from_object(obj, label)
        if pair:
            pairs.append(pair)
        if warning:
            warnings.append(warning)
    return Document(kind="faq", title=title, faqs=pairs, warnings=warnings)


TOO_DEEP = ("the JSON is nested thousands of levels deep, far more than an FAQ file is; save it as a list of "
            '{"question": ..., "answer": ...} objects')


def read_json(data: bytes, name: str) -> Document:
    text = decode_text(data, "JSON file")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise BadInput(f"this is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    except RecursionError:
        raise BadInput(TOO_DEEP) from None
    if isinstance(value, dict):
        # {"faqs": [...]} and similar wrappers
        lists = [v for v in value.values() if isinstance(v, list)]
        value = lists[0] if len(lists) == 1 else [value]
    if not isinstance(value, list):
        raise BadInput("expected a list of objects with question and answer keys")
    return _collect([(f"item {n}", obj) for n, obj in enumerate(value, start=1)], name)


def read_jsonl(data: bytes, name: str) -> Document:
    text = decode_text(data, "JSON Lines file")
    items, bad = [], []
    for n, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            items.append((f"line {n}", json.loads(line)))
        except json.JSONDecodeError as e:
            bad.append(f"line {n}: not valid JSON ({e.msg}); skipped")
        except RecursionError:
            bad.append(f"line {n}: {TOO_DEEP}; skipped")
    doc = _collect(items, name)
    doc.warnings = bad + doc.warnings
    return doc
