"""The `kbchat` command line: one command per verb, a thin layer over the library.

Heavy libraries are imported inside the commands that need them, so `kbchat --help` is instant.
Domain errors become a one-line message and exit status 1; Ctrl-C becomes exit status 130.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from kb.errors import BadInput, KbchatError
from kb.location import describe
from kb.records import PATH_NAMES
from ui import jobs, servers
from ui.places import duration, place, plural, split_uri, writing_speed

if TYPE_CHECKING:
    from compare.result import EvalResult

DEFAULT_KB = "kbchat_data"


def _kb_here(ctx: click.Context, _param, value: str | None) -> None:
    """`kbchat COMMAND --kb DIR` means the same as `kbchat --kb DIR COMMAND`."""
    if value is not None:
        from kb.location import resolve

        ctx.obj = resolve(value)


def _with_kb(command: click.Command) -> click.Command:
    if any("--kb" in getattr(p, "opts", ()) for p in command.params):
        return command  # a command with a --kb of its own (model-server: several knowledge bases)
    command.params.append(click.Option(["--kb"], metavar="DIR", expose_value=False, callback=_kb_here,
                                       is_eager=True, help="Knowledge base folder or database (as kbchat --kb)."))
    return command


class _Command(click.Command):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _with_kb(self)


class _Group(click.Group):
    command_class = _Command

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KbchatError as e:
            click.secho(f"Error: {e}", fg="red", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.secho("\nStopped. Work finished before the interruption is saved; the rest is unchanged.", err=True)
            ctx.exit(130)


class _SubGroup(click.Group):
    """A group under `kbchat` (kbchat visitor ...): its commands take --kb too."""
    command_class = _Command


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--kb", "kb_dir", metavar="DIR", envvar="KBCHAT_HOME", default=DEFAULT_KB, show_default=True,
              help="Knowledge base folder, or a PostgreSQL database: postgresql://USER:PASSWORD@HOST/DB?bot=NAME "
                   "(else $KBCHAT_HOME, else ./kbchat_data).")
@click.version_option(package_name="kbchat")
@click.pass_context
def cli(ctx: click.Context, kb_dir: str) -> None:
    """kbchat: turn your business documents into a customer chatbot.

    Start with `kbchat ingest FILES_OR_FOLDERS_OR_URLS`, then `kbchat sources`.
    """
    from kb.location import resolve

    ctx.obj = resolve(kb_dir)


def _store(ctx: click.Context, create: bool = True):
    from kb.store import Store

    return Store(ctx.obj, create=create)


def _settings(ctx: click.Context):
    from kb.settings import Settings

    return Settings.load(ctx.obj)


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


# -- ingest ----------------------------------------------------------------------------------------
_MARKS = {"added": ("+", "green"), "updated": ("~", "cyan"), "unchanged": ("=", None), "failed": ("x", "red"), "skipped": ("-", "yellow")}


@cli.command()
@click.argument("targets", nargs=-1, required=True, metavar="PATH_OR_URL...")
@click.option("--crawl", "crawl_pages", type=click.IntRange(min=1, max=10_000), default=None, metavar="N",
              help="For URLs: follow links on the same site, up to N pages in all.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.pass_context
def ingest(ctx: click.Context, targets: tuple[str, ...], crawl_pages: int | None, as_json: bool) -> None:
    """Add files, folders (recursively) and web pages to the knowledge base.

    Formats: FAQ spreadsheets (.csv .tsv .xlsx) and FAQ files (.json .jsonl) with question and
    answer columns, .pdf, .md, .txt, .html, .docx, video subtitles (.srt .vtt), and http(s)
    URLs. Re-ingesting an unchanged
    file changes nothing; a changed file replaces its own passages.
    """
    from kb.ingest import ingest as run_ingest

    settings = _settings(ctx)
    results = []
    with _store(ctx) as store:
        for r in run_ingest(store, list(targets), settings, crawl_pages or 0):
            results.append(r)
            if not as_json:
                _print_result(r)
        n_sources, n_chunks = store.count()
        if any(r.status in ("added", "updated") for r in results):
            if not as_json:
                click.echo("Updating the search index...")
            _index(store, settings, quiet=as_json)
    failed = sum(r.failed for r in results)
    if as_json:
        _echo_json([dataclasses.asdict(r) for r in results])
    else:
        counts = {s: sum(r.status == s for r in results) for s in _MARKS}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        click.echo(f"\n{summary or 'nothing to do'}. The knowledge base has "
                   f"{plural(n_sources, 'source')} and {plural(n_chunks, 'passage')}.")
        if failed:
            click.secho(f"{failed} file{'s' if failed > 1 else ''} could not be added; the reasons are above.", fg="red")
    if failed:
        ctx.exit(1)


def _index(store, settings, quiet: bool):
    """Bring the search indexes in line with the store, saying what had to be done (a rebuild, new
    passages embedded); returns the Retriever."""
    from rag.retrieve import Retriever

    retriever = Retriever(store, settings)
    for message in retriever.sync():
        if not quiet:
            click.secho(message, fg="yellow", err=True)
    return retriever


def _print_result(r) -> None:
    mark, colour = _MARKS[r.status]
    line = f"{mark} {r.status:<9} {r.target}"
    if r.status in ("added", "updated", "unchanged"):
        what = plural(r.n_faqs, "FAQ pair") if r.n_faqs else plural(r.n_chunks, "passage")
        line += f"  ({r.kind}, {what})"
    if r.reason:
        line += f": {r.reason}"
    click.secho(line, fg=colour)
    for w in r.warnings:
        click.secho(f"    ! {w}", fg="yellow")


# -- sources, remove, chunks -------------------------------------------------------------------------
@cli.command()
@click.option("--last", is_flag=True, help="Only show the report of the last sync.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def sync(ctx: click.Context, last: bool, as_json: bool) -> None:
    """Read every web page and file of the knowledge base again and keep only what changed.

    Changed pages and files are read again (only their new passages are embedded); pages the site
    removed and deleted files are removed; a page that fails to load keeps its old passages and is
    reported. The setting sync_every_hours makes kbchat serve do this by itself.
    """
    from kb import sync as syncing

    if last:
        report = syncing.last(ctx.obj)
        if report is None:
            raise BadInput("This knowledge base has not been synced yet. Sync it with: kbchat sync")
    else:
        settings = _settings(ctx)
        with _store(ctx, create=False) as store:
            store.require_documents()

            def heard(uri: str, result) -> None:
                if not as_json and result is not None and result.status != "unchanged":
                    _print_result(result)
                elif not as_json and result is None:
                    click.secho(f"- removed   {uri}  (gone)", fg="yellow")

            report = syncing.sync(store, settings, heard)
            if report.changed_anything:
                if not as_json:
                    click.echo("Updating the search index...")
                _index(store, settings, quiet=as_json)
    if as_json:
        _echo_json(dataclasses.asdict(report))
        return
    when = report.finished_at[:16].replace("T", " ")
    click.echo(f"{'Last sync' if last else 'Synced'} ({when} UTC, {report.seconds:.1f} s): {report.summary()}")
    if report.failed:
        ctx.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def sources(ctx: click.Context, as_json: bool) -> None:
    """List the documents in the knowledge base."""
    from kb.errors import NotFound

    try:
        store = _store(ctx, create=False)
    except NotFound:
        items = []
    else:
        with store:
            items = store.sources()
    if as_json:
        _echo_json([dataclasses.asdict(s) for s in items])
        return
    if not items:
        click.echo(f"The knowledge base at {describe(ctx.obj)} is empty. Add documents with: kbchat ingest PATH_OR_URL")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Knowledge base: {describe(ctx.obj)}", title_justify="left")
    for col, kw in [("Source", {"no_wrap": True}), ("Type", {}), ("Passages", {"justify": "right"}),
                    ("FAQ pairs", {"justify": "right", "no_wrap": True}), ("Added, UTC", {"no_wrap": True}),
                    ("Where", {"overflow": "fold"})]:
        table.add_column(col, **kw)
    for s in items:
        name, where = split_uri(s.uri)
        table.add_row(name, s.kind, str(s.n_chunks), str(s.n_faqs), s.ingested_at.replace("T", " ")[:16], where)
    Console().print(table)


@cli.command()
@click.argument("names", nargs=-1, required=True, metavar="SOURCE...")
@click.pass_context
def remove(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Delete sources and their passages (by path, URL, or file name as `kbchat sources` shows).
    A copy kbchat keeps itself (an upload, the answers you wrote in kbchat) is deleted too."""
    from kb import sources as owner_sources

    with _store(ctx, create=False) as store:
        for name in names:
            removed = owner_sources.remove(store, name)
            kept = " The copy kbchat kept of it is deleted too." if removed.deleted_file else ""
            click.echo(f"Removed {removed.uri} ({plural(removed.passages, 'passage')}).{kept}")


@cli.command()
@click.argument("name", metavar="SOURCE")
@click.option("--json", "as_json", is_flag=True, help="Print the passages as JSON.")
@click.pass_context
def chunks(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show the passages kbchat made of one source."""
    with _store(ctx, create=False) as store:
        source = store.find_source(name)
        items = store.chunks(source.uri)
    if as_json:
        _echo_json([dataclasses.asdict(c) for c in items])
        return
    for n, c in enumerate(items, start=1):
        click.secho(f"--- {n}/{len(items)}  {c.location or source.title}  [{c.id}]", bold=True)
        click.echo(c.text)


# -- settings -------------------------------------------------------------------------------------
@cli.command()
@click.option("--set", "changes", multiple=True, metavar="NAME=VALUE", help="Change a setting (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the settings as JSON.")
@click.pass_context
def settings(ctx: click.Context, changes: tuple[str, ...], as_json: bool) -> None:
    """Show or change this knowledge base's settings (kept in settings.toml)."""
    from kb.errors import BadInput
    from kb.setting_groups import AUTO, GROUP_OF
    from kb.settings import Settings

    current = _settings(ctx)
    if changes:
        parsed = {}
        for change in changes:
            name, sep, value = change.partition("=")
            if not sep:
                raise BadInput(f"'{change}' is not NAME=VALUE, for example: --set chunk_size=600")
            parsed[name.strip()] = value.strip()
        current = current.updated(**parsed)
        path = current.save(ctx.obj)
        chunking = {"chunk_size", "chunk_overlap"} & set(parsed)
        click.echo(f"Saved {path}." + (" Re-ingest your documents for chunking changes to take effect." if chunking else ""))
    if as_json:
        _echo_json(current.to_dict())
        return
    group = None
    for name, default, help_text in Settings.describe():
        if GROUP_OF[name] != group:
            group = GROUP_OF[name]
            click.secho(f"\n[{group}]", bold=True)
        value = current.get(name)
        mark = "" if value == default else "   (changed)"
        shown = (json.dumps(list(value), ensure_ascii=False) if isinstance(value, tuple) else
                 AUTO if value is None else repr(value))
        click.echo(f"{name} = {shown}{mark}\n    {help_text}")


# -- search ---------------------------------------------------------------------------------------
@cli.command()
@click.argument("query")
@click.option("-k", "k", type=click.IntRange(1, 100), default=5, show_default=True, help="How many passages to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the ranked passages as JSON.")
@click.pass_context
def search(ctx: click.Context, query: str, k: int, as_json: bool) -> None:
    """Show the passages that best match a question, with scores, source and location."""
    hits = _search(ctx, query, k, quiet=as_json)
    if as_json:
        _echo_json([{"score": h.score, "dense": h.dense, "lexical": h.lexical, **dataclasses.asdict(h.chunk)} for h in hits])
        return
    if not hits:
        click.echo("No passage matches that question.")
    for n, h in enumerate(hits, start=1):
        click.secho(f"[{n}] score {h.score:.3f}  {place(h.chunk.source, h.chunk.location)}", bold=True)
        click.echo(h.chunk.text.strip() + "\n")


def _search(ctx: click.Context, query: str, k: int, quiet: bool = False):
    from kb.errors import BadInput

    if not query.strip():
        raise BadInput("The question is empty. Type a question, for example: kbchat search \"opening hours\"")
    with _store(ctx, create=False) as store:
        store.require_documents()
        return _index(store, _settings(ctx), quiet).search(query, k)


# -- ask -------------------------------------------------------------------------------------------


@cli.command()
@click.argument("question")
@click.option("--path", "path_name", type=click.Choice(PATH_NAMES), default="rag", show_default=True,
              help="rag: answer from your documents. base: the model alone, without them (for comparison). "
                   "tuned: the model fine-tuned on your FAQ (kbchat tune). rag+tuned: the fine-tuned model reading your documents.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer record as one JSON object.")
@click.option("--explain", is_flag=True, help="Also say why this answer was given, declined or written: the scores "
                                                "and the thresholds they were held against, and any sentence left out.")
@click.option("--chat", is_flag=True, help="Hold a conversation: each line you type continues the chat, so a follow-up "
                                             "(\"how much is it?\") is answered in its context. An empty line ends it.")
@click.option("--history", "history_file", type=click.Path(dir_okay=False),
              help="A JSON file of the chat so far: a list of {\"question\", \"answer\"} turns, oldest first.")
@click.pass_context
def ask(ctx: click.Context, question: str, path_name: str, as_json: bool, explain: bool, chat: bool,
        history_file: str | None) -> None:
    """Answer a customer's question, showing the answer as it is written and the sources it cites.

    Use - as QUESTION to read the question from standard input. With --chat, QUESTION is the first
    message and the next ones are read line by line.
    """
    from kb.records import Answer, Turn

    if question == "-":
        question = click.get_text_stream("stdin").read()
    history = _read_history(history_file) if history_file else []
    settings = _settings(ctx)
    with contextlib.ExitStack() as stack:
        # The base path is the model alone: it needs no knowledge base.
        store = None if path_name == "base" else stack.enter_context(_store(ctx, create=False))
        path = _path(path_name, store, settings, quiet=as_json)
        while True:
            answer = None
            for item in path.stream(question, history):
                if isinstance(item, Answer):
                    answer = item
                elif not as_json:
                    click.echo(item, nl=False)
            if as_json:
                _echo_json(answer.to_dict())
            else:
                click.echo()
                _print_answer_details(answer)
                if explain:
                    _print_why(answer)
            if not chat:
                return
            history.append(Turn(answer.question, answer.text, answer.searched))
            try:
                question = click.prompt("You", default="", show_default=False, prompt_suffix=": ").strip()
            except click.exceptions.Abort:  # the end of the input, or Ctrl-C: the chat ends
                click.echo()
                return
            if not question:
                return


def _read_history(path: str) -> list:
    """The chat so far from a JSON file: [{"question": ..., "answer": ...}, ...], oldest first."""
    from kb.records import Turn

    try:
        turns = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise BadInput(f"Cannot read the chat history {path}: {e.strerror}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadInput(f"{path} is not a JSON file. Give the chat so far as a list like "
                       '[{"question": "Do you have kids\' classes?", "answer": "Yes, on Saturdays."}].') from None
    if not isinstance(turns, list) or not all(
            isinstance(t, dict) and isinstance(t.get("question"), str) and isinstance(t.get("answer"), str) for t in turns):
        raise BadInput(f"{path} must hold a list of turns, each with a \"question\" and an \"answer\" text, oldest first.")
    return [Turn(t["question"], t["answer"]) for t in turns]


def _print_why(answer) -> None:
    """Why the answer is what it is, for the owner (kbchat ask --explain)."""
    click.secho(f"  Why: {answer.why or 'no reason was recorded.'}", fg="magenta")
    if answer.searched and answer.searched != answer.question:
        click.secho(f"  A follow-up: searched your documents for \"{answer.searched}\"", fg="magenta")
    for sentence in answer.held_back:
        click.secho(f"  Left out: {sentence}", fg="magenta", dim=True)


def _path(name: str, store, settings, quiet: bool):
    """One answer path, or the reason it cannot answer here as the error."""
    paths = _paths(store, settings, [name], quiet)
    if not paths:
        raise KbchatError(paths.unavailable[name])
    return paths.available[0]


def _paths(store, settings, names, quiet: bool):
    from compare.paths import build

    return build(store, settings, names, on_message=None if quiet else lambda m: click.secho(m, fg="yellow", err=True))


def _print_answer_details(answer) -> None:
    from kb.records import METHOD_WORDS

    for c in answer.citations:
        click.secho(f"  [{c.n}] {place(c.source, c.location)}", fg="cyan")
    for note in answer.notes:
        click.secho(f"  ! {note}", fg="yellow")
    timing = f"{answer.total_ms:.0f} ms"
    if speed := writing_speed(answer.n_tokens, answer.tokens_per_s):
        timing += f", {speed}"
    if answer.model:
        timing += f"; {answer.model}"
    click.secho(f"  ({METHOD_WORDS[answer.method]}; confidence {answer.confidence:.2f}; {timing})", dim=True)


# -- comparison and evaluation --------------------------------------------------------------------
_PATHS_HELP = f"Comma-separated answer paths: {', '.join(PATH_NAMES)} (default: all that can run)."


@cli.command()
@click.argument("question")
@click.option("--paths", "path_names", metavar="LIST", default=None, help=_PATHS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every path's answer record.")
@click.pass_context
def compare(ctx: click.Context, question: str, path_names: str | None, as_json: bool) -> None:
    """Ask every answer path the same question and show the answers side by side.

    Use - as QUESTION to read the question from standard input.
    """
    from compare.paths import parse_names

    if question == "-":
        question = click.get_text_stream("stdin").read()
    names = parse_names(path_names)
    settings = _settings(ctx)
    with _optional_store(ctx) as store:
        paths = _paths(store, settings, names, quiet=as_json)
        if not paths:
            raise KbchatError("No answer path can run: " + " ".join(paths.unavailable.values()))
        answers = [p.answer(question) for p in paths]
    if as_json:
        _echo_json({"question": answers[0].question, "answers": [a.to_dict() for a in answers],
                    "unavailable": paths.unavailable})
        return
    _print_comparison(answers, paths.unavailable)


@contextlib.contextmanager
def _optional_store(ctx: click.Context):
    """The knowledge base, or None when there is none yet (then only the plain model can answer)."""
    from kb.store import Store

    if not Store.exists(ctx.obj):
        yield None
        return
    with _store(ctx, create=False) as store:
        yield store


def _print_comparison(answers, unavailable: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from compare.paths import DESCRIPTIONS

    table = Table(title=f"A customer asks: {answers[0].question}", show_lines=True, expand=True)
    table.add_column("Path", style="bold", ratio=1)
    table.add_column("Answer", ratio=4)
    table.add_column("Sources", ratio=2)
    table.add_column("Time", justify="right", ratio=1)
    for a in answers:
        sources = "\n".join(f"[{c.n}] {place(c.source, c.location)}" for c in a.citations) or "-"
        speed = duration(a.total_ms)
        if a.tokens_per_s:
            speed += f"\n{a.tokens_per_s:.0f} tok/s"
        body = _rich_escape(a.text) + "".join(f"\n[yellow]! {_rich_escape(n)}[/]" for n in a.notes)
        label = f"{a.path}\n[dim]{DESCRIPTIONS.get(a.path, '')}[/]" + ("\n[red]declined[/]" if a.refused else "")
        table.add_row(label, body, _rich_escape(sources), speed)
    console = Console()
    console.print(table)
    for name, reason in unavailable.items():
        console.print(f"[yellow]{name}: not available. {_rich_escape(reason)}[/]")


def _rich_escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


@cli.command(name="eval")
@click.argument("questions_file", required=False, metavar="[QUESTIONS.jsonl]")
@click.option("--paths", "path_names", metavar="LIST", default=None, help=_PATHS_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the whole result as one JSON object.")
@click.option("--report", "report_dir", metavar="DIR", help="Write an HTML report, the JSON and the charts to this folder.")
@click.option("--staleness", is_flag=True, help="Also change one price (on a copy of the knowledge base) and see which paths notice.")
@click.option("--profiles", "with_profiles", is_flag=True,
              help="Also measure answers from your documents with the other model profile (on a copy of the knowledge base).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N questions (a quick look).")
@click.option("--workers", type=click.IntRange(1, 16), default=None,
              help="Questions answered at a time, one CPU core each (default: 2 when there are 2 or more cores).")
@click.pass_context
def eval_command(ctx: click.Context, questions_file: str | None, path_names: str | None, as_json: bool,
                 report_dir: str | None, staleness: bool, with_profiles: bool, limit: int | None, workers: int | None
                 ) -> None:
    """Measure which answer path answers your customers best.

    Without QUESTIONS.jsonl, the questions are made from your knowledge base: every FAQ question
    word for word, each reworded (never in fine-tuning's training data), questions from your
    documents, and questions your documents do not cover. A file has one JSON object per line:
    {"question": ..., "answer": ..., "expected": [facts], "in_scope": true}. An interrupted run
    picks up where it stopped.
    """
    from tqdm import tqdm

    from compare.paths import parse_names
    from compare.run import run

    names = parse_names(path_names)
    settings = _settings(ctx)
    bar = tqdm(unit="answer", dynamic_ncols=True, disable=None)

    def on_progress(progress) -> None:
        bar.set_description(progress.path)
        bar.total, bar.n = progress.total, progress.done
        bar.refresh()

    with _store(ctx, create=False) as store:
        try:
            result, html = run(store, settings, names, questions_file=questions_file, limit=limit,
                               with_staleness=staleness, with_profiles=with_profiles, workers=workers,
                               report_dir=report_dir, on_progress=on_progress,
                               on_message=None if as_json else lambda m: click.secho(m, fg="yellow", err=True))
        finally:
            bar.close()
    if html and not as_json:
        click.secho(f"Report: {html}", fg="green")
    if as_json:
        _echo_json(result.to_dict())
        return
    _print_evaluation(result)


def _print_evaluation(result: EvalResult) -> None:
    from rich.console import Console
    from rich.table import Table

    from compare.results import METRICS, metric_text
    from compare.verdict import verdict

    evaluated = {name: result.paths[name] for name in result.evaluated()}
    table = Table(title=f"{result.n_questions} questions")
    table.add_column("")
    for name in evaluated:
        table.add_column(name, justify="right")
    for key, _label, short, _explain, how in METRICS:
        # Intervals for the two headline rates only, so the table fits a terminal (the report has all).
        with_ci = key in ("fact_accuracy", "refusal_accuracy")
        cells = [metric_text(m, key, how, ci=with_ci) for m in evaluated.values()]
        if any(c != "–" for c in cells):
            table.add_row(short, *cells)
    console = Console()
    console.print(table)
    for line in verdict(result):
        console.print(_rich_escape(line))


# -- fine-tuning ---------------------------------------------------------------------------------
@cli.command()
@click.option("--extra", "extra_file", metavar="FILE",
              help="An extra file to train on as well: questions and answers, or a transcript export of real chats "
                   "(CSV, JSON or JSONL of turns with a role and a message).")
@click.option("--rated", "use_rated", is_flag=True, help="Also train on the website chat's answers that visitors rated helpful.")
@click.option("--epochs", type=click.IntRange(1, 50), default=None, help="The most epochs to train (early stopping may end sooner).")
@click.option("--lr", "learning_rate", type=click.FloatRange(1e-6, 1e-2), default=None, help="Learning rate (default 1e-3, measured on the sample FAQ).")
@click.option("--resume", is_flag=True, help="Finish the last interrupted run from its checkpoint.")
@click.option("--check", "check_only", is_flag=True, help="Only check the training data and say what would be trained.")
@click.pass_context
def tune(ctx: click.Context, extra_file: str | None, use_rated: bool, epochs: int | None, learning_rate: float | None,
         resume: bool, check_only: bool) -> None:
    """Fine-tune the model on your FAQ pairs (LoRA): a second answer path to compare with RAG.

    Each FAQ question is also trained in reworded forms, and some rewordings are held out to
    measure how well the model handles questions worded differently. Ctrl-C stops safely; go on
    later with --resume. The finished model is saved as a new version and made active.
    """
    from tqdm import tqdm

    from tuning.data import load_extra_pairs, rated_pairs
    from tuning.train import TuneSettings, prepare, train

    chosen = {"epochs": epochs, "learning_rate": learning_rate}
    settings = TuneSettings(**{k: v for k, v in chosen.items() if v is not None})
    said: list[str] = []  # what the extra sources gave and left out
    extra = load_extra_pairs(extra_file, said) if extra_file else []
    if use_rated:
        rated = rated_pairs(ctx.obj)
        said.append(f"Answers visitors rated helpful: {len(rated)} question/answer pairs.")
        extra += rated

    def show_report(report, data):
        for line in said:
            click.echo(line)
        for line in report.describe():
            click.echo(line)
        click.echo(f"Training examples: {len(data.train)} (questions and rewordings); validation: {len(data.validation)} held-out rewordings.")

    with _store(ctx, create=False) as store:
        if check_only:
            from rag.generate import load_tokenizer

            # The same token count as training uses for "too long".
            show_report(*prepare(store, settings, extra or None, load_tokenizer(_settings(ctx).models.generator)))
            return
        bars = []  # made at the first step, so the data check prints above it
        said = []  # the expected time, once said

        def on_step(p):
            if not bars:
                bars.append(tqdm(total=p.total_steps, initial=p.step, unit="step", dynamic_ncols=True))
            bar = bars[0]
            bar.n = p.step
            last = p.train_loss[-1][1] if p.train_loss else float("nan")
            val = f" val {p.val_loss[-1][1]:.3f}" if p.val_loss else ""
            bar.set_description(f"epoch {min(p.epoch + 1, p.epochs)}/{p.epochs} loss {last:.3f}{val}")
            bar.refresh()
            if p.expected_s is not None and not said:  # once, as soon as the first steps are timed
                said.append(p.message)
                tqdm.write(p.message)

        try:
            info = train(store, None if resume else settings, extra or None, resume=resume, on_step=on_step,
                         kb_settings=_settings(ctx), on_report=show_report)
        finally:
            for bar in bars:
                bar.close()
    stop = f"stopped early after epoch {info.epochs_run}" if info.stopped_early else f"{info.epochs_run} epochs"
    click.secho(f"Adapter {info.id} is ready and active ({stop}; best validation loss {info.best_val_loss:.3f} "
                f"at epoch {info.best_epoch}; {info.train_seconds / 60:.1f} min, {info.tokens_per_s:.0f} tokens/s).", fg="green")
    fit = info.fit()
    if fit is not None:
        click.echo(fit[2])
    click.echo(f"Loss curve: {info.path}/loss.png. Try it: kbchat ask --path tuned \"your question\"")


@cli.command()
@click.option("--activate", "activate_id", metavar="ID", help="Make this adapter the one the tuned paths use.")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.pass_context
def adapters(ctx: click.Context, activate_id: str | None, as_json: bool) -> None:
    """List the fine-tuned models (adapters) and switch between them."""
    from tuning import adapters as store_adapters

    if activate_id:
        store_adapters.activate(ctx.obj, activate_id)
        click.echo(f"Adapter {activate_id} is now active.")
    found = store_adapters.list_adapters(ctx.obj)
    active = store_adapters.active_id(ctx.obj)
    if as_json:
        _echo_json([{**a.summary(), "active": a.id == active} for a in found])
        return
    if not found:
        click.echo("No fine-tuned model yet. Train one with: kbchat tune")
        return
    with _store(ctx, create=False) as store:
        faq_hash = store.faq_hash()
    for a in found:
        mark = "*" if a.id == active else " "
        stale = "  (trained on older FAQ content)" if a.faq_hash != faq_hash else ""
        click.echo(f"{mark} {a.id}  {a.created_at[:16].replace('T', ' ')}  {a.n_train} examples, {a.epochs_run} epochs, "
                   f"validation loss {a.best_val_loss:.3f}, {a.train_seconds / 60:.1f} min{stale}")


@cli.command(name="model-server")
@click.option("--kb", "kb_dirs", multiple=True, metavar="DIR_OR_URL",
              help="A knowledge base (folder or postgresql://...?bot=NAME) whose active fine-tuned model to serve "
                   "(repeatable; default: the --kb given before the command).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on: 0.0.0.0 (or this machine's private address) for workers on other machines.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Port to listen on.")
@click.option("--print", "print_only", is_flag=True, help="Only print the command line, to run it yourself or in a service manager.")
@click.pass_context
def model_server(ctx: click.Context, kb_dirs: tuple[str, ...], host: str, port: int, print_only: bool) -> None:
    """Serve several businesses' fine-tuned models from one llama.cpp server.

    One base model in memory, with each knowledge base's adapter beside it; each answer asks for its
    own. Point every knowledge base at it with the settings this prints. With
    $KBCHAT_MODEL_SERVER_KEY set, the server asks every request for that key (kbchat sends it).
    """
    import shlex
    import socket

    from kb.location import resolve
    from kb.process import Process
    from rag.remote import KEY_ENV
    from tuning import served

    plan = served.plan([resolve(k) for k in kb_dirs] or [ctx.obj], port, host)
    key = os.environ.get(KEY_ENV, "")
    if print_only:
        click.echo(plan.shell())
        if key:
            click.echo(f"Give it the key in its environment: LLAMA_API_KEY=\"${KEY_ENV}\"")
    click.echo(f"One llama-server at {plan.url} for the fine-tuned models of {plural(len(plan.served), 'knowledge base')}:")
    for kb, adapter_id in plan.served:
        click.echo(f"  {describe(kb)}: adapter {adapter_id}")
    click.echo("Point each of them at it (their other answer paths then use its base model too):")
    for kb, _ in plan.served:
        click.echo(f"  kbchat --kb {shlex.quote(str(kb))} settings --set model_server_url={plan.url} "
                   f"--set model_server_model={plan.model}")
    if host not in ("127.0.0.1", "::1", "localhost") and not key:
        click.secho(f"Anyone who reaches port {port} of this machine can use the server: keep it on a private network, "
                    f"or set ${KEY_ENV} here and in every worker's environment.", fg="yellow")
    if print_only:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise KbchatError(f"kbchat cannot listen on {host} port {port} ({e.strerror}): another server may use it, or the "
                              "address is not this machine's. Choose another with --port or --host.") from None
    env = {**os.environ, "LLAMA_API_KEY": key} if key else None  # in the environment, not on its command line
    health = plan.local_url.rstrip("/").removesuffix("/v1") + "/health"
    with Process(plan.command, env=env) as server:
        signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop ends the server too
        code = 0
        try:
            if server.wait_healthy(health):
                click.secho(f"The model server is ready at {plan.url} (Ctrl-C stops it).", fg="green")
            code = server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
        if code:
            last = server.output().strip().splitlines()[-3:]
            raise KbchatError(f"llama-server stopped (exit status {code}): {' / '.join(last) or 'no message'}")


# -- the website chatbot ----------------------------------------------------------------------------
@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0 for every network).")
@click.option("--port", type=click.IntRange(1, 65535), default=servers.DEFAULT_PORT, show_default=True,
              help="Port to listen on.")
@click.pass_context
def serve(ctx: click.Context, host: str, port: int) -> None:
    """Serve the chat API and the website widget.

    Put the chatbot on your site with the script tag this prints (kbchat keys prints it again).
    One chat server per knowledge base folder: a second one says where the first is answering.
    """
    import uvicorn

    from kb.bot import BotRecords, embed_tag
    from kb.location import database_of
    from ui.api import create_app

    with _store(ctx, create=False) as store:
        store.require_documents()
    others = servers.running(ctx.obj)
    if others and database_of(ctx.obj) is None:  # workers of a database-backed bot may share a machine
        raise BadInput(f"A chat server for this knowledge base is already answering at {others[0].url} (process "
                       f"{others[0].pid}). Use that one, or stop it first (Ctrl-C where it runs, or Stop on the app's "
                       "Widget page).")
    if not servers.port_free(port, host):
        free = servers.free_port_from(port + 1, host)
        raise BadInput(f"Port {port} is in use by another program. Choose another with --port"
                       + (f", like {free}." if free else "."))
    with BotRecords(ctx.obj) as records:
        token = records.ensure_keys()
        key = records.public_key()
    base = servers.Server(os.getpid(), host, port, 0).url
    click.echo(f"kbchat is answering at {base} (Ctrl-C stops it). Add the chat to a web page with:")
    click.secho(embed_tag(base, key), fg="cyan")
    if token:
        _show_admin_token(token)
    redis_url = _settings(ctx).server.redis_url
    if redis_url:
        from kb.location import shown
        from ui.ratelimit import check

        problem = check(redis_url)
        click.secho(problem or f"Rate limits are shared with the other workers through Redis at {shown(redis_url)}.",
                    fg="yellow" if problem else None)
    with servers.announced(ctx.obj, host, port):
        uvicorn.run(create_app(ctx.obj), host=host, port=port, log_level="warning")


def _show_admin_token(token: str) -> None:
    click.secho(f"Admin token (shown only now; keep it secret): {token}", fg="yellow")


@cli.command()
@click.option("--rotate", type=click.Choice(["public", "admin"]), help="Replace a key: the old one stops working at once.")
@click.option("--host", "base", default=None, metavar="URL",
              help="Where kbchat serve is reachable, for the script tag [default: the running chat server's "
                   f"address, else {servers.default_url()}].")
@click.option("--json", "as_json", is_flag=True, help='Print {"public_key": ...} (and a new admin token).')
@click.option("--app-password", "app_password", is_flag=True,
              help="Set the password the app asks for when it is opened from another computer (kbchat ui --host).")
@click.pass_context
def keys(ctx: click.Context, rotate: str | None, base: str, as_json: bool, app_password: bool) -> None:
    """Print the chatbot's public key and the script tag for your site; rotate a key.

    The public key sits in your web page, so it is public by nature: it only lets a page chat.
    The admin token opens settings, conversations and leads; it is shown once, when it is made.
    """
    from kb.bot import BotRecords, embed_tag

    with _store(ctx, create=False):
        pass  # a clear message when there is no knowledge base
    with BotRecords(ctx.obj) as records:
        token = records.ensure_keys()
        if app_password:
            records.set_app_password(click.prompt("App password", hide_input=True, confirmation_prompt=True))
            click.secho("The app password is set: the app asks for it when it is opened from another computer.", fg="green")
        if rotate == "public":
            records.rotate_public_key()
        elif rotate == "admin":
            token = records.rotate_admin_token()
        key = records.public_key()
    if as_json:
        _echo_json({"public_key": key, **({"admin_token": token} if token else {})})
        return
    if base is None:
        found = servers.running(ctx.obj)
        base = found[0].url if found else servers.default_url()
    click.echo(f"Public key: {key}")
    click.echo("Script tag for your web pages:")
    click.secho(embed_tag(base.rstrip("/"), key), fg="cyan")
    if rotate == "public":
        click.secho("The old public key no longer works: update the script tag on your site.", fg="yellow")
    if token:
        _show_admin_token(token)


# -- visitors' data ---------------------------------------------------------------------------------
@cli.group(cls=_SubGroup)
def visitor() -> None:
    """A visitor's data (their right of access and erasure): everything stored about one visitor,
    found by their chat's session id or by the e-mail address of a lead they left."""


def _visitor_options(f):
    f = click.option("--email", metavar="ADDRESS", help="The e-mail address of a lead they left.")(f)
    return click.option("--session", "session_id", metavar="ID", help="Their chat's session id (Insights lists them).")(f)


@visitor.command(name="export")
@_visitor_options
@click.option("--out", "out_file", metavar="FILE", help="Write the JSON to this file instead of printing it.")
@click.pass_context
def visitor_export(ctx: click.Context, session_id: str | None, email: str | None, out_file: str | None) -> None:
    """Everything stored about one visitor, as JSON: their questions, the answers, their leads."""
    from kb.bot import BotRecords
    from kb.files import atomic_write

    with _store(ctx, create=False), BotRecords(ctx.obj) as records:
        data = records.visitor_data(session_id, email)
    if not out_file:
        _echo_json(data)
        return
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    atomic_write(Path(out_file), lambda f: f.write(text.encode("utf-8")))
    click.secho(f"Wrote {plural(len(data['exchanges']), 'answer')} and {plural(len(data['leads']), 'lead')} "
                f"to {out_file}.", fg="green")


@visitor.command(name="erase")
@_visitor_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
def visitor_erase(ctx: click.Context, session_id: str | None, email: str | None, yes: bool) -> None:
    """Delete everything stored about one visitor, for good."""
    from kb.bot import BotRecords

    with _store(ctx, create=False), BotRecords(ctx.obj) as records:
        data = records.visitor_data(session_id, email)  # what will go, and a clear message when nothing
        what = f"{plural(len(data['exchanges']), 'answer')} and {plural(len(data['leads']), 'lead')}"
        if not yes:
            click.confirm(f"Delete {what} of this visitor for good?", abort=True)
        records.erase_visitor(session_id, email)
    click.secho(f"Deleted {what}.", fg="green")


@cli.command()
@click.option("--port", type=click.IntRange(1, 65535), default=8501, show_default=True, help="Port of the app.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--browser/--no-browser", default=True, help="Open the app in your web browser.")
@click.pass_context
def ui(ctx: click.Context, port: int, host: str, browser: bool) -> None:
    """Open the kbchat app: your documents, both answer paths side by side, fine-tuning, evaluation,
    the website widget and what your visitors ask."""
    import sys

    from kb.process import Process

    app = Path(__file__).with_name("app.py")
    env = {**os.environ, "KBCHAT_HOME": str(ctx.obj.resolve())}
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
    if not is_loopback(host):  # others can reach it: every page asks for a password first
        from kb.bot import BotRecords

        with _store(ctx, create=True), BotRecords(ctx.obj) as records:
            token = records.ensure_keys()
        env[LOCK_ENV] = "1"
        click.echo(f"The app listens on {host}, so other computers can reach it: it asks for your admin token or "
                   "your app password (set one with: kbchat keys --app-password) before any page shows.")
        if token:
            _show_admin_token(token)
    click.echo(f"kbchat app: {url} (Ctrl-C stops it)")
    upload_mb = max(1, int(_settings(ctx).ingest.max_file_mb + 0.999))  # the same limit ingestion applies
    # Headless always: a first run of Streamlit otherwise stops to ask for an e-mail address.
    cmd = [sys.executable, "-m", "streamlit", "run", str(app), "--server.port", str(port), "--server.address", host,
           "--server.headless", "true", "--browser.gatherUsageStats", "false", "--theme.base", "light",
           "--server.maxUploadSize", str(upload_mb), "--client.toolbarMode", "minimal"]
    app_process = Process(cmd, env=env, capture=False)
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop ends the app and its jobs too
    code = 0
    try:
        if browser:
            _open_when_ready(url, app_process)
        code = app_process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        app_process.close()
        stopped = jobs.stop_all(ctx.obj.resolve())
        if stopped:
            click.echo(f"Stopped the app's background work: {', '.join(stopped)}.", err=True)
    ctx.exit(code)


LOCK_ENV = "KBCHAT_APP_LOCKED"  # set for an app other computers can reach: ui/app.py asks for a password


def is_loopback(host: str) -> bool:
    """Whether an address to listen on is reachable from this computer only."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _open_when_ready(url: str, app_process) -> None:
    """Open the app in the browser once it answers (not at all if it does not within a minute)."""
    import webbrowser

    from kb.process import NotReady

    try:
        if app_process.wait_healthy(f"{url}/_stcore/health", timeout=60):
            webbrowser.open(url)
    except NotReady:
        pass


# -- demo -----------------------------------------------------------------------------------------
DEMO_QUESTIONS = (
    "How much does the beginner wheel course cost?",  # a curated FAQ answer
    "What is the largest piece your kilns can fire?",  # written from the policies PDF
    "Do you sell 3D printers?",  # not in the documents: the fallback message
)


@cli.command(hidden=True)
@click.pass_context
def demo(ctx: click.Context) -> None:
    """The terminal demo `make demo` runs after ingesting sample_data/."""
    ctx.invoke(sources)
    for question in DEMO_QUESTIONS:
        click.secho(f"\nA customer asks: {question}", bold=True)
        ctx.invoke(ask, question=question, path_name="rag", as_json=False)


def main() -> None:
    try:
        jobs.ready()  # started by the app, which stops it with SIGINT (see ui.jobs)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    cli(prog_name="kbchat")


if __name__ == "__main__":
    main()
