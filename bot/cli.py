"""The `maxbot` command: ask, chat, check, eval, bench, run, reindex, audit, followups, export,
suggestions.

Every command answers through the same engine as the Telegram bot: `answer(question, index)`.

One module over 400 lines on purpose: every command's wiring in one place (the work itself is
in the modules each command imports).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from bot.answering import Answer, answer, answer_many, models_of
from bot.eligibility.loading import rules_of
from bot.knowledge import load_index, load_knowledge
from bot.language import LANGUAGES
from bot.replies import render, render_answer, to_plain_text
from bot.settings import Settings
from bot.storage.models import FollowUpStatus
from index import KnowledgeError, KnowledgeIndex, KnowledgeInvalid


def _open_index(settings: Settings, analyzer: str | None = None) -> KnowledgeIndex:
    try:
        index = load_index(settings.knowledge_dir, analyzer or settings.analyzer,
                           settings.cache_dir)
        models_of(index)
        return index
    except KnowledgeError as exc:
        print(f"The knowledge base in {settings.knowledge_dir} has an error:\n  {exc}",
              file=sys.stderr)
        raise SystemExit(1) from exc
    except KnowledgeInvalid as exc:
        print(f"The knowledge base in {settings.knowledge_dir} has errors:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        print("Fix them (maxbot check lists them) and try again.", file=sys.stderr)
        raise SystemExit(1) from exc


def answer_as_json(result: Answer, index: KnowledgeIndex) -> dict[str, object]:
    document = result.document
    sources = [index.knowledge.sources[s] for s in document.sources] if document else []
    return {
        "question": result.question,
        "status": result.status,
        "reply": to_plain_text(render_answer(result, index.knowledge, terminal=True)),
        "entry_id": document.id if document else None,
        "score": round(result.hit.score, 4) if result.hit else None,
        "coverage": round(result.hit.coverage, 4) if result.hit else None,
        "followup": result.followup,
        "probability": round(result.probability, 4),
        "on_topic": round(result.on_topic, 4),
        "signals": {name: push for name, push in result.signals},
        "intent": result.intent,
        "parts": [{"question": p.question, "status": p.status,
                   "entry_id": p.document.id if p.document else None,
                   "probability": round(p.probability, 4)} for p in result.parts],
        "suggestions": [{"id": s.id, "question": s.title} for s in result.suggestions],
        "sources": [
            {"id": s.id, "title": s.title, "publisher": s.publisher, "date": s.date.isoformat()}
            for s in sources
        ],
    }


def _questions(args: list[str]) -> Iterator[str]:
    for arg in args:
        if arg == "-":
            yield from (line.strip() for line in sys.stdin if line.strip())
        else:
            yield arg


def cmd_ask(opts: argparse.Namespace, settings: Settings) -> int:
    index = _open_index(settings, opts.analyzer)
    rules = settings.answering_rules()
    for question in _questions(opts.questions):
        result = answer(question, index, rules)
        if opts.json:
            print(json.dumps(answer_as_json(result, index), ensure_ascii=False), flush=True)
        else:
            html = render_answer(result, index.knowledge, terminal=True)
            print(to_plain_text(html), end="\n\n", flush=True)
    return 0


# Words that end the terminal chat, as people type them (Ctrl+D and Ctrl+C end it too).
LEAVE_WORDS = frozenset({"quit", "exit", "q", "나가기", "종료", "/quit", "/exit"})


def _say(template: str, **context: object) -> None:
    print(to_plain_text(render(template, **context)))


def cmd_chat(opts: argparse.Namespace, settings: Settings) -> int:
    """Chat in the terminal: answers as the bot gives them, and the commands that make sense
    here. Nothing is sent to the secretariat from the terminal, and the replies say so."""
    index = _open_index(settings)
    rules = settings.answering_rules()
    _say("terminal_welcome", version=index.version, entries=len(index.knowledge.entries),
         connected=settings.telegram_bot_token is not None)
    prompt = to_plain_text(render("terminal_prompt")) + " "
    while True:
        try:
            line = input("\n" + prompt).strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not line:
            continue
        if line.casefold() in LEAVE_WORDS:
            _say("terminal_goodbye")
            return 0
        if line.startswith("/"):
            _terminal_command(line.split()[0].split("@")[0].casefold(), index)
            continue
        result = answer(line, index, rules)
        print(to_plain_text(render_answer(result, index.knowledge, terminal=True)))


def _terminal_command(command: str, index: KnowledgeIndex) -> None:
    if command in ("/help", "/start"):
        _say("terminal_help")
    elif command == "/check":
        check = rules_of(index.knowledge)
        _say("terminal_check", steps=[s.label for s in check.steps] if check else [],
             methods=[m.label for m in check.methods.values()] if check else [])
    else:
        _say("terminal_unknown_command", command=command)


def cmd_check(opts: argparse.Namespace, settings: Settings) -> int:
    root = Path(opts.knowledge_dir or settings.knowledge_dir)
    try:
        knowledge = load_knowledge(root)
    except KnowledgeInvalid as exc:
        for error in exc.errors:
            print(f"error: {error}")
        print(f"{len(exc.errors)} error(s) in {root}")
        return 1
    errors = []
    try:
        index = load_index(root, settings.analyzer, settings.cache_dir)
        models_of(index)
    except KnowledgeError as exc:
        errors.append(str(exc))
    else:
        errors.extend(phrasing_errors(index))
    for error in errors:
        print(f"error: {error}")
    max_age = opts.max_age_days or settings.knowledge_max_age_days
    stale = knowledge.stale(dt.date.today(), max_age)
    for doc in stale:
        print(f"warning: {doc.path}:{doc.line}: {doc.id} is as of {doc.as_of}, "
              f"older than {max_age} days; check it is still true")
    if errors:
        print(f"{len(errors)} error(s) in {root}")
        return 1
    print(f"ok: {len(knowledge.entries)} FAQ entries, {len(knowledge.passages)} policy passages, "
          f"{len(knowledge.sources)} sources; version {knowledge.version}"
          + (f"; {len(stale)} stale" if stale else ""))
    return 1 if stale and opts.strict else 0


def phrasing_errors(index: KnowledgeIndex) -> list[str]:
    """FAQ questions and alternates that two entries share, or that are answered with
    another entry (or not at all): a user typing them would not get their entry."""
    owners: dict[str, list[str]] = {}
    asked = []
    for entry in index.knowledge.entries:
        for text in (entry.question, *entry.alternates):
            owners.setdefault(" ".join(text.casefold().split()), []).append(entry.id)
            asked.append((entry, text))
    errors = [f"phrasing {text!r} belongs to {', '.join(sorted(set(ids)))}"
              for text, ids in owners.items() if len(set(ids)) > 1]
    results = answer_many([text for _, text in asked], index)
    for (entry, text), result in zip(asked, results, strict=True):
        got = result.document.id if result.document else result.status
        if got != entry.id and len(set(owners[" ".join(text.casefold().split())])) == 1:
            errors.append(f"{entry.path}:{entry.line}: {entry.id}: {text!r} is answered "
                          f"with {got}")
    return errors


def cmd_fit(opts: argparse.Namespace, settings: Settings) -> int:
    from bot.answering.fit import (
        CHATBOT_TRAIN,
        EVAL_DIR,
        TRAINING_SETS,
        fit,
        training_sets,
        write_models,
    )

    opts.sets = opts.sets or EVAL_DIR
    if not training_sets(opts.sets) or not (opts.sets / CHATBOT_TRAIN).is_file():
        print(f"{opts.sets}: a folder of question sets holds {CHATBOT_TRAIN} and at least one "
              f"of {', '.join(TRAINING_SETS)}", file=sys.stderr)
        return 2
    index = load_index(settings.knowledge_dir, settings.analyzer, settings.cache_dir)
    if opts.with_traffic:
        return _fit_with_traffic(opts, settings, index)
    topic, answer_model, report = fit(index, opts.sets, show_errors=opts.errors)
    print("\n".join(report.lines))
    if opts.dry_run:
        return 0
    for path in write_models(index.knowledge.root, topic, answer_model):
        print(f"wrote {path}")
    return 0


def _fit_with_traffic(opts: argparse.Namespace, settings: Settings, index: KnowledgeIndex
                      ) -> int:
    """Fit with the labelled questions of real traffic too; write the new models only when
    no blind set does worse with them (totals: right answers and wrong ones)."""
    from bot.answering.fit import fit_with_traffic, traffic_labelled, write_models
    from bot.answering.model import ANSWER_FILE, MODEL_DIR
    from bot.storage.database import with_database
    from bot.storage.suggestions import labelled_traffic

    async def read(database) -> tuple[list[tuple[str, str]], list[str]]:
        async with database.session() as session:
            return await labelled_traffic(session)

    traffic = traffic_labelled(*with_database(settings.database_url, settings.spool_path, read))
    served = json.loads((index.knowledge.root / MODEL_DIR / ANSWER_FILE).read_text("utf-8"))
    print("before (the models served now, as fitted):")
    print("\n".join(served.get("figures") or ["  (no figures recorded)"]))
    print(f"\nafter, with {len(traffic)} labelled questions from traffic "
          f"({sum(t.answerable for t in traffic)} answered right by their entry, "
          f"{sum(not t.answerable for t in traffic)} rated 👎 as wrong):")
    fitted = fit_with_traffic(index, traffic, opts.errors, opts.sets)
    print("\n".join(fitted.report.lines))
    print("\nblind sets (right / wrong of all, totals only): before -> after")
    for name, old in fitted.before.items():
        new = fitted.after[name]
        print(f"  {name:16} {old.right:4} / {old.wrong:3} of {old.questions:4} -> "
              f"{new.right:4} / {new.wrong:3}")
    if fitted.worse:
        print(f"not written: worse on {', '.join(fitted.worse)}")
        return 1
    if opts.dry_run:
        print("not written (--dry-run)")
        return 0
    for path in write_models(index.knowledge.root, fitted.topic, fitted.answer):
        print(f"wrote {path}")
    return 0


def cmd_eval(opts: argparse.Namespace, settings: Settings) -> int:
    from bot.evaluation import evaluate, format_report, load_questions

    index = _open_index(settings, opts.analyzer)
    report = evaluate(load_questions(opts.file), index, settings.answering_rules())
    print(format_report(report, show_failures=not opts.quiet))
    if opts.min_accuracy is not None:
        worst = min(report.accuracy(k) for k in ("in", "unknown", "off"))
        if worst < opts.min_accuracy:
            return 1
    return 0


def cmd_bench(opts: argparse.Namespace, settings: Settings) -> int:
    from bot.bench import run_benchmark

    run_benchmark(settings, sizes=opts.sizes, queries=opts.queries, passes=opts.passes,
                  reloads=not opts.no_reload,
                  written=opts.written or sorted(Path("tests/eval").glob("holdout*.yaml")))
    return 0


def cmd_run(opts: argparse.Namespace, settings: Settings) -> int:
    from bot.app import run

    try:
        settings.token()
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        run(settings)
    except KnowledgeInvalid as exc:
        print("The knowledge base has errors:\n" + "\n".join(f"  {e}" for e in exc.errors),
              file=sys.stderr)
        return 1
    except KnowledgeError as exc:
        print(f"The knowledge base has an error:\n  {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_followups(opts: argparse.Namespace, settings: Settings) -> int:
    from bot.reports.listing import list_followups

    return list_followups(settings, status=opts.status, since=opts.since, as_json=opts.json)


def cmd_export(opts: argparse.Namespace, settings: Settings) -> int:
    from bot.reports.export import export

    fmt = opts.format or opts.out.suffix.lstrip(".").lower()
    if fmt not in ("csv", "xlsx", "html"):
        print("Give --format csv, xlsx or html (or an --out file ending in one).",
              file=sys.stderr)
        return 2
    return export(settings, fmt, opts.since, opts.until, opts.out, opts.language)


def cmd_reindex(opts: argparse.Namespace, settings: Settings) -> int:
    """Validate and index knowledge/, then make it the version every running bot serves."""
    from bot.reloading import compare, fingerprints
    from bot.storage.database import with_database
    from bot.storage.records import activate_knowledge, active_knowledge, log_action

    index = _open_index(settings)
    prints = fingerprints(index.knowledge)

    async def activate(database) -> tuple[str | None, tuple[tuple[str, ...], ...]]:
        async with database.session() as session:
            state = await active_knowledge(session)
            before = json.loads(state.fingerprints) if state else {}
            await activate_knowledge(session, index.version, prints)
            await log_action(session, 0, "reindex", f"cli: {index.version}")
        return (state.version if state else None), compare(before, prints)

    old, (added, removed, changed) = with_database(settings.database_url, settings.spool_path,
                                                   activate)
    print(f"knowledge {old or '(none)'} -> {index.version}: {len(index.knowledge.entries)} FAQ "
          f"entries, {len(index.knowledge.passages)} passages")
    print(f"added {len(added)}, removed {len(removed)}, changed {len(changed)}")
    for label, ids in (("+", added), ("-", removed), ("~", changed)):
        for entry_id in ids:
            print(f"  {label} {entry_id}")
    print(f"running bots switch within {settings.knowledge_sync_seconds:g} s "
          "(KNOWLEDGE_SYNC_SECONDS)")
    return 0


def cmd_suggestions(opts: argparse.Namespace, settings: Settings) -> int:
    """List the suggested wordings per entry; accept (write, validate, make it the version
    every running bot serves) or reject one."""
    import asyncio

    from bot.learning import accept_suggestion, reject_suggestion, suggestions_by_entry
    from bot.reloading import fingerprints
    from bot.storage.database import with_database
    from bot.storage.records import activate_knowledge, log_action

    try:  # the entries and their files; only an acceptance needs the whole index
        knowledge = load_knowledge(settings.knowledge_dir)
    except KnowledgeInvalid as exc:
        print(f"The knowledge base in {settings.knowledge_dir} has errors:", file=sys.stderr)
        for error in exc.errors:
            print(f"  {error}", file=sys.stderr)
        return 1

    async def refresh(database) -> tuple[str, ...]:
        try:
            fresh = await asyncio.to_thread(load_index, settings.knowledge_dir,
                                            settings.analyzer, settings.cache_dir)
            models_of(fresh)
        except KnowledgeInvalid as exc:
            return tuple(str(e) for e in exc.errors)
        except KnowledgeError as exc:
            return (str(exc),)
        async with database.session() as session:
            await activate_knowledge(session, fresh.version, fingerprints(fresh.knowledge))
        return ()

    async def work(database) -> tuple[str, bool]:
        if opts.action is None:
            groups = await suggestions_by_entry(database, knowledge)
            return render("suggestions", groups=groups,
                          total=sum(len(s) for _, s in groups)), True
        async with database.session() as session:
            await log_action(session, 0, f"suggestion_{opts.action}", f"cli: #{opts.number}")
        if opts.action == "accept":
            decision = await accept_suggestion(database, knowledge, opts.number, 0,
                                               lambda: refresh(database))
        else:
            decision = await reject_suggestion(database, opts.number, 0)
        if decision.outcome in ("accepted", "rejected"):
            async with database.session() as session:
                await log_action(session, 0, f"suggestion_{decision.outcome}",
                                 f"cli: {decision.entry_id}: {decision.wording}")
        return (render("suggestion_decided", number=opts.number, decision=decision),
                decision.outcome in ("accepted", "rejected"))

    if opts.action is not None and opts.number is None:
        print(f"Give the suggestion's number: maxbot suggestions {opts.action} N",
              file=sys.stderr)
        return 2
    text, done = with_database(settings.database_url, settings.spool_path, work)
    print(to_plain_text(text))
    if opts.action == "accept" and done:
        print(f"running bots switch within {settings.knowledge_sync_seconds:g} s "
              "(KNOWLEDGE_SYNC_SECONDS)")
    return 0 if done else 1


def cmd_audit(opts: argparse.Namespace, settings: Settings) -> int:
    from bot.reports.audit import list_actions

    return list_actions(settings, since=opts.since, as_json=opts.json)


def cmd_default(opts: argparse.Namespace, settings: Settings) -> int:
    """Without a command: run the Telegram bot when a token is set, else chat in the terminal."""
    if settings.telegram_bot_token is not None:
        return cmd_run(opts, settings)
    return cmd_chat(opts, settings)


COMMANDS = {
    "reindex": cmd_reindex,
    "audit": cmd_audit,
    "suggestions": cmd_suggestions,
    "ask": cmd_ask,
    "chat": cmd_chat,
    "check": cmd_check,
    "fit": cmd_fit,
    "eval": cmd_eval,
    "bench": cmd_bench,
    "run": cmd_run,
    "followups": cmd_followups,
    "export": cmd_export,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maxbot",
        description=to_plain_text(render("cli_description")),
    )
    sub = parser.add_subparsers(dest="command")

    ask = sub.add_parser("ask", help="answer questions and print the replies")
    ask.add_argument("questions", nargs="+", help="questions; '-' reads one per line from stdin")
    ask.add_argument("--json", action="store_true", help="one JSON object per question")
    ask.add_argument("--analyzer", choices=["kiwi", "mecab", "whitespace"])

    sub.add_parser("chat", help="chat with the assistant in this terminal")

    check = sub.add_parser("check", help="validate the knowledge base")
    check.add_argument("--knowledge-dir", help="folder to check (default KNOWLEDGE_DIR)")
    check.add_argument("--max-age-days", type=int, help="warn about entries older than this")
    check.add_argument("--strict", action="store_true", help="fail on stale entries too")

    ev = sub.add_parser("eval", help="measure answer quality on a question file")
    ev.add_argument("file", type=Path)
    ev.add_argument("--analyzer", choices=["kiwi", "mecab", "whitespace"])
    ev.add_argument("--quiet", action="store_true", help="totals only, no failures")
    ev.add_argument("--min-accuracy", type=float, help="exit 1 when a kind falls below this")

    fit = sub.add_parser("fit", help="fit the decision's models on the labelled questions, "
                         "print cross-validated figures and write knowledge/model/")
    fit.add_argument("--dry-run", action="store_true", help="print the figures, write nothing")
    fit.add_argument("--with-traffic", action="store_true",
                     help="also learn from the bot's traffic (accepted suggestions, rated "
                          "answers); write only when the blind sets do not get worse")
    fit.add_argument("--sets", type=Path, metavar="FOLDER",
                     help="the labelled question sets (default: tests/eval of this checkout): "
                          "the ones named in TRAINING_SETS that it holds are fitted on, its "
                          "other holdout*.yaml are the blind sets")
    fit.add_argument("--errors", action="store_true",
                     help="also list the question sets' questions the cross-validated "
                          "decision serves wrong or leaves unanswered")
    sub.add_parser("run", help="run the Telegram bot (polling, or webhook if WEBHOOK_URL)")
    sub.add_parser("reindex", help="validate and index knowledge/, make it the version every "
                   "running bot serves")
    audit = sub.add_parser("audit", help="list admin and secretariat actions")
    audit.add_argument("--since", type=dt.date.fromisoformat, help="from this day (YYYY-MM-DD)")
    audit.add_argument("--json", action="store_true", help="one JSON object per action")

    suggestions = sub.add_parser("suggestions", help="wordings users asked, to add as FAQ "
                                 "alternates: list them, or accept / reject one")
    suggestions.add_argument("action", nargs="?", choices=["accept", "reject"])
    suggestions.add_argument("number", nargs="?", type=int, help="the suggestion's number")

    bench = sub.add_parser("bench", help="latency and memory of answering")
    bench.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000],
                       help="synthetic knowledge base sizes (passages)")
    bench.add_argument("--queries", type=int, default=300, help="questions per corpus")
    bench.add_argument("--passes", type=int, default=1,
                       help="answer the questions this many times per corpus, each pass reported")
    bench.add_argument("--no-reload", action="store_true",
                       help="leave out the reload timings (a minute and more)")
    bench.add_argument("--written", type=Path, nargs="*", default=[],
                       help="question sets whose messages are answered too (row \"written\"; "
                       "default, and with no file named: tests/eval/holdout*.yaml)")

    followups = sub.add_parser("followups", help="list the secretariat's follow-ups")
    followups.add_argument("--status", type=FollowUpStatus, choices=list(FollowUpStatus))
    followups.add_argument("--since", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                           help="opened on or after this day (KST)")
    followups.add_argument("--json", action="store_true", help="one JSON object per line")

    export = sub.add_parser("export", help="questions and follow-ups of a period: CSV, "
                            "Excel or an HTML report")
    export.add_argument("--format", choices=["csv", "xlsx", "html"],
                        help="default: from the --out file's ending")
    export.add_argument("--since", type=dt.date.fromisoformat, required=True,
                        metavar="YYYY-MM-DD", help="first day (KST)")
    export.add_argument("--until", type=dt.date.fromisoformat, metavar="YYYY-MM-DD",
                        help="last day, included (KST); default: up to now")
    export.add_argument("--out", type=Path, required=True, metavar="FILE")
    export.add_argument("--language", choices=LANGUAGES, default="ko",
                        help="the words of the report, the headers and the labels "
                        "(default: ko); what people wrote stays as written")
    return parser


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    settings = Settings()
    handler = COMMANDS.get(opts.command, cmd_default)
    try:
        return handler(opts, settings) or 0
    except BrokenPipeError:
        # The reader stopped reading (`maxbot ask … | head`): nothing more to say, and no
        # traceback. Python's own advice: point stdout at devnull so its flush at exit is quiet.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
