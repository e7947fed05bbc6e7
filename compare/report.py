"""The evaluation report an owner reads, as one HTML file: the verdict (compare.verdict), the
charts (compare.charts), the scores and every answer side by side.
`write_report(result, out_dir)` writes `results.json`, four PNG charts and `report.html`, one
self-contained file (charts inlined as data URIs, inline CSS, no script) that can be mailed.

    >>> write_report(result, "kbchat_data/reports/2026-11-23")         # doctest: +SKIP
    PosixPath('kbchat_data/reports/2026-11-23/report.html')

Everything taken from `result` is HTML-escaped: answers echo customer questions and documents.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from compare.charts import charts
from compare.result import EvalResult, PathMetrics, ProfileRow, ScoredAnswer
from compare.results import (CHARTS, CHART_CAPTIONS, CLEAR_P, KIND_WORDS, METRICS, NOT_APPLICABLE, PROFILE_WORDS,
                             cap, fmt, metric_text, path_words, profile_models, profile_rows)
from compare.verdict import verdict


CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } .meta { color: #555; margin-top: 0; }
.verdict { background: #eef6ee; border-left: 6px solid #2e7d32; padding: 0.8em 1.2em; margin: 1.2em 0; }
.verdict .headline { font-size: 1.25em; font-weight: 600; }
.verdict .recommendation { font-weight: 600; }
table { border-collapse: collapse; margin: 0.8em 0; width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.35em 0.55em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; white-space: nowrap; }
.explain { color: #555; font-size: 0.9em; }
.right { background: #eefaf0; } .wrong { background: #fdecec; } .unknown { background: #f7f7f7; }
.mark { font-weight: 700; margin-right: 0.3em; }
.right .mark { color: #2e7d32; } .wrong .mark { color: #c62828; } .unknown .mark { color: #777; }
.tag { color: #555; font-size: 0.85em; }
figure { display: inline-block; margin: 0.5em; } figure img { max-width: 100%; }
.note { color: #555; }
"""


def e(value: Any) -> str:
    """Text from the result, safe inside HTML."""
    return html.escape(str(value))


def _metric_cell(m: PathMetrics | ProfileRow, key: str, how: str) -> str:
    return f'<td class="num">{e(metric_text(m, key, how))}</td>'


def _metrics_html(result: EvalResult) -> str:
    names = result.evaluated()
    notes = "".join(f'<p class="note">{e(cap(path_words(n)))} was not evaluated: {e(why)}</p>'
                    for n, why in result.unavailable().items())
    if not names:
        return "<h2>Scores</h2>" + (notes or '<p class="note">No answer path was evaluated.</p>')
    head = "<tr><th>Measure</th>" + "".join(f"<th>{e(n)}<br><span class=\"explain\">{e(path_words(n))}</span></th>"
                                            for n in names) + "<th>What it means</th></tr>"
    rows = []
    for key, label, _short, explain, how in METRICS:
        cells = "".join(_metric_cell(result.paths[n], key, how) for n in names)
        rows.append(f"<tr><th>{e(label)}</th>{cells}<td class=\"explain\">{e(explain)}</td></tr>")
    return ("<h2>Scores</h2><p class=\"note\">Ranges in brackets are 95% confidence intervals; "
            f"{NOT_APPLICABLE} means not applicable.</p><table>{head}{''.join(rows)}</table>{notes}")


def _comparisons_html(result: EvalResult) -> str:
    if not result.comparisons:
        return ""
    rows = []
    for c in result.comparisons:
        p = c.p_value
        call = "clear difference" if p < CLEAR_P else "too close to call"
        cells = [c.a, c.b, c.metric, fmt(c.a_value, "rate"), fmt(c.b_value, "rate"), c.test, c.n,
                 "< 0.001" if p < 0.001 else f"{p:.3g}", call]
        rows.append("<tr>" + "".join(f"<td>{e(NOT_APPLICABLE if v is None else v)}</td>" for v in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("A", "B", "Measure", "A", "B", "Test", "Questions", "p-value", "Verdict"))
    return ("<h2>Is the difference real?</h2><p class=\"note\">Paired tests on the same questions: a p-value "
            f"below {CLEAR_P} means the difference is unlikely to be luck.</p>"
            f"<table><tr>{head}</tr>{''.join(rows)}</table>")


def _charts_html(pngs: dict[str, bytes]) -> str:
    captions = CHART_CAPTIONS
    figs = []
    for name, png in pngs.items():
        data = base64.b64encode(png).decode("ascii")
        figs.append(f'<figure><img src="data:image/png;base64,{data}" alt="{e(captions[name])}">'
                    f"<figcaption>{e(captions[name])}</figcaption></figure>")
    return "<h2>Charts</h2>" + "".join(figs) if figs else ""


def _staleness_html(result: EvalResult) -> str:
    stale = result.staleness
    if stale is None:
        return ""
    rows = "".join(
        f"<tr><td>{e(n)}</td><td>{e(s.answer)}</td>"
        f"<td>{'yes' if s.says_new else 'no'}</td><td>{'yes' if s.says_old else 'no'}</td>"
        f"<td>{e(s.how)}</td></tr>"
        for n, s in stale.paths.items())
    return ("<h2>When an answer changes</h2>"
            f"<p>We changed the FAQ answer to <q>{e(stale.faq_question)}</q> from "
            f"<b>{e(stale.old_value)}</b> to <b>{e(stale.new_value)}</b> and asked "
            f"<q>{e(stale.question)}</q>.</p>"
            "<table><tr><th>Path</th><th>Answer</th><th>New value?</th><th>Old value?</th><th>How</th></tr>"
            f"{rows}</table>")


def _profiles_html(result: EvalResult) -> str:
    rows = profile_rows(result)
    if not rows:
        return ""
    keys = [("fact_accuracy", "rate"), ("refusal_accuracy", "rate"), ("wrongly_refused", "rate"),
            ("latency_p50_ms", "seconds"), ("latency_p95_ms", "seconds")]
    labels = {k: label for k, label, *_ in METRICS}
    head = "<tr><th>Profile</th><th>Models</th>" + "".join(f"<th>{e(labels[k])}</th>" for k, _ in keys) + "</tr>"
    body = []
    for r in rows:
        name = PROFILE_WORDS.get(r.profile, r.profile) + (" (in use)" if r.in_use else "")
        models = profile_models(r)
        if r.unavailable:
            cells = f'<td colspan="{len(keys)}">{e(r.unavailable)}</td>'
        else:
            cells = "".join(_metric_cell(r, k, how) for k, how in keys)
        body.append(f"<tr><th>{e(name)}</th><td>{e(models)}</td>{cells}</tr>")
    return ("<h2>Model profiles on this machine</h2><p class=\"note\">The answers from your documents with each "
            "model profile, on the same questions. The profile not in use was measured on a copy of your "
            "knowledge base. Change it with the setting <code>model_profile</code>.</p>"
            f"<table>{head}{''.join(body)}</table>")


def _overlap_html(result: EvalResult) -> str:
    ov = result.training_overlap
    adapter = ov.adapter
    if not ov.checked:
        why = "no fine-tuned model was evaluated" if adapter is None else f"adapter {adapter}"
        html = f"<h2>Training overlap</h2><p class=\"note\">Not checked ({e(why)}).</p>"
    elif not ov.n_in_training:
        text = (f"None of the test questions were in the fine-tuned model's training data "
                f"(adapter {adapter}), so its scores are not inflated by memory.")
        html = f"<h2>Training overlap</h2><p>{e(text)}</p>"
    else:
        items = "".join(f"<li>{e(q)}</li>" for q in ov.questions)
        text = (f"{ov.n_in_training} test question(s) were also in the training data of adapter {adapter}: "
                "the fine-tuned model's score on them shows memory, not understanding.")
        html = f"<h2>Training overlap</h2><p>{e(text)}</p><ul>{items}</ul>"
    return html + _calibration_overlap_html(result)


def _calibration_overlap_html(result: EvalResult) -> str:
    cal = result.calibration_overlap
    if not cal.checked:
        return ""
    if not cal.n_calibrated:
        return ("<p>None of the test questions were among those kbchat used to set this knowledge base's thresholds "
                "(when to give a curated answer, when to decline), so its decline figures are measured on new questions.</p>")
    items = "".join(f"<li>{e(q)}</li>" for q in cal.questions)
    return (f"<p>{cal.n_calibrated} test question(s) were also among those kbchat used to set this knowledge base's "
            f"thresholds: the answers from your documents may look better on them than on new questions.</p><ul>{items}</ul>")


def _answer_cell(a: ScoredAnswer | None) -> str:
    if a is None:
        return f'<td class="unknown">{NOT_APPLICABLE}</td>'
    right = a.right
    cls, mark = ("unknown", "?") if right is None else (("right", "✓") if right else ("wrong", "✗"))
    tag = ' <span class="tag">(declined)</span>' if a.refused else ""
    return f'<td class="{cls}"><span class="mark">{mark}</span>{e(a.text)}{tag}</td>'


def _question_names(result: EvalResult) -> list[str]:
    names = result.evaluated()
    skip = set(result.unavailable())
    for q in result.questions:
        names += [n for n in q.answers if n not in names and n not in skip]
    return names


def _questions_html(result: EvalResult) -> str:
    questions = result.questions
    if not questions:
        return ""
    names = _question_names(result)
    head = "<tr><th>Question</th><th>Kind</th><th>Reference answer</th>" + "".join(
        f"<th>{e(n)}</th>" for n in names) + "</tr>"
    rows = []
    for q in questions:
        kind = q.kind
        if q.reference is not None:
            ref = e(q.reference)
        elif not q.in_scope:
            ref = '<span class="tag">not covered by your documents: should decline</span>'
        else:
            ref = NOT_APPLICABLE
        if q.expected:
            ref += '<br><span class="tag">expects: ' + e("; ".join(q.expected)) + "</span>"
        cells = "".join(_answer_cell(q.answers.get(n)) for n in names)
        rows.append(f"<tr><td>{e(q.question)}</td><td>{e(KIND_WORDS.get(kind, kind))}</td>"
                    f"<td>{ref}</td>{cells}</tr>")
    return ("<h2>Every question</h2><p class=\"note\">✓ right fact (or, for questions your documents do not "
            "cover, politely declined); ✗ wrong; ? could not be checked.</p>"
            f"<table>{head}{''.join(rows)}</table>")


def _verdict_html(lines: list[str]) -> str:
    head, rest = lines[0], lines[1:]
    items = "".join(f'<li class="recommendation">{e(s)}</li>' if s.startswith("Use ") else f"<li>{e(s)}</li>"
                    for s in rest)
    return f'<div class="verdict"><p class="headline">{e(head)}</p><ul>{items}</ul></div>'


def render_html(result: EvalResult, pngs: dict[str, bytes]) -> str:
    """The whole report as one self-contained HTML page."""
    source = result.questions_file or "built from the knowledge base"
    meta = (f"{e(result.created_at)} · knowledge base {e(result.kb or NOT_APPLICABLE)} · "
            f"{e(result.n_questions)} questions ({e(source)}) · meaning compared with {e(result.semantic_model or NOT_APPLICABLE)}")
    models = sorted(set(result.models.values()))
    if models:
        meta += f" · answers written by {e('; '.join(models))}"
    body = "".join([
        "<h1>How well does your chatbot answer?</h1>", f'<p class="meta">{meta}</p>',
        _verdict_html(verdict(result)), _metrics_html(result), _comparisons_html(result),
        _charts_html(pngs), _staleness_html(result), _profiles_html(result), _overlap_html(result),
        _questions_html(result),
    ])
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>Chatbot evaluation report</title>"
            f"<style>{CSS}</style></head><body>{body}</body></html>\n")


def write_report(result: EvalResult, out_dir: str | Path) -> Path:
    """Write results.json, the charts and report.html into `out_dir`; return report.html's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
    pngs = charts(result)
    for name in CHARTS:
        png_path = out / f"{name}.png"
        if name in pngs:
            png_path.write_bytes(pngs[name])
        else:
            png_path.unlink(missing_ok=True)  # a chart left from an earlier run would mislead
    report = out / "report.html"
    report.write_text(render_html(result, pngs), encoding="utf-8")
    return report
