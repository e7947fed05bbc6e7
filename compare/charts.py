"""The evaluation's charts (PNG bytes): right facts, speed, memorization and declines per path."""

from __future__ import annotations

from compare.result import EvalResult
from compare.results import SHORT_WORDS, kind_accuracy


def _bars(title: str, ylabel: str, names: list[str], series: dict[str, list[float | None]],
          errors: list[tuple[float, float]] | None = None, ylim: tuple[float, float] | None = None) -> bytes:
    """A (grouped) bar chart as PNG bytes. None values leave a gap."""
    import io

    from matplotlib.figure import Figure  # heavy: only when a report is written

    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    ax = fig.add_subplot()
    width = 0.8 / len(series)
    xs = range(len(names))
    for i, (label, values) in enumerate(series.items()):
        offsets = [x - 0.4 + width * (i + 0.5) for x in xs]
        heights = [float("nan") if v is None else v for v in values]
        yerr = None
        if errors is not None and i == 0:
            yerr = [[lo for lo, _ in errors], [hi for _, hi in errors]]
        ax.bar(offsets, heights, width, label=label, yerr=yerr, capsize=4 if yerr else 0)
    ax.set_xticks(list(xs), [SHORT_WORDS.get(n, n) for n in names])
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if ylim:
        ax.set_ylim(*ylim)
    if len(series) > 1:
        ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _accuracy_chart(result: EvalResult) -> bytes | None:
    names = [n for n in result.evaluated() if result.metric(n, "fact_accuracy") is not None]
    if not names:
        return None
    accs = [result.metric(n, "fact_accuracy") for n in names]
    errors = []
    for n, acc in zip(names, accs):
        ci = result.metric(n, "fact_accuracy_ci")
        errors.append((max(acc - ci[0], 0.0), max(ci[1] - acc, 0.0)) if ci and None not in ci else (0.0, 0.0))
    return _bars("Right fact given (bars: 95% confidence range)", "fact accuracy", names,
                 {"fact accuracy": accs}, errors=errors, ylim=(0, 1.05))


def _latency_chart(result: EvalResult) -> bytes | None:
    keys = ("latency_p50_ms", "latency_p95_ms")
    names = [n for n in result.evaluated() if any(result.metric(n, k) is not None for k in keys)]
    if not names:
        return None
    series = {label: [None if (v := result.metric(n, k)) is None else v / 1000 for n in names]
              for label, k in zip(("typical (p50)", "slowest 1 in 20 (p95)"), keys)}
    return _bars("Time to answer", "seconds", names, series)


def _memorization_chart(result: EvalResult) -> bytes | None:
    kinds = ("verbatim", "reworded")
    names = [n for n in result.evaluated() if any(kind_accuracy(result, n, k) is not None for k in kinds)]
    if not names:
        return None
    series = {label: [kind_accuracy(result, n, k) for n in names]
              for label, k in zip(("asked word for word", "worded differently"), kinds)}
    return _bars("FAQ questions: word for word vs reworded", "fact accuracy", names, series, ylim=(0, 1.05))


def _refusals_chart(result: EvalResult) -> bytes | None:
    keys = ("refusal_accuracy", "hallucination_rate")
    names = [n for n in result.evaluated() if any(result.metric(n, k) is not None for k in keys)]
    if not names:
        return None
    series = {label: [result.metric(n, k) for n in names]
              for label, k in zip(("declined (good)", "made up an answer (bad)"), keys)}
    return _bars("Questions your documents do not cover", "share of questions", names, series, ylim=(0, 1.05))


def charts(result: EvalResult) -> dict[str, bytes]:
    """Chart name -> PNG bytes, leaving out a chart no path has data for."""
    makers = {"accuracy": _accuracy_chart, "latency": _latency_chart,
              "memorization": _memorization_chart, "refusals": _refusals_chart}
    return {name: png for name, make in makers.items() if (png := make(result)) is not None}
