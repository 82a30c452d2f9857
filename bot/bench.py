"""`maxbot bench`: latency and memory of answering, on the real knowledge base and grown ones.

For each corpus it times, per question, the analysis (tokenize), the decision including search
(answer), and the rendering of the reply, and reports median and p95 beside rank-bm25's own
`BM25Okapi.get_scores` on the same corpus and the same query terms, run in the same process.
Grown corpora are made of real passages' token lists recombined with new terms, so that the
vocabulary grows with the corpus as it would with real documents. The questions are the FAQ's
own, shortened or with a word added; the row "written" answers, on the real knowledge base,
messages of the question sets (`--written`), as long as people write them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import random
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bot.answering import answer, answer_many
from bot.knowledge import load_knowledge
from bot.replies import render_answer
from bot.settings import Settings
from index import KnowledgeIndex, Passage, make_analyzer


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 2**20


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - start) / 1e6


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, int(0.95 * len(ordered)) - 1)]


def bench_questions(index: KnowledgeIndex, count: int, seed: int = 7) -> list[str]:
    """Questions users type: FAQ questions and alternates, shortened, with noise words."""
    rng = random.Random(seed)
    pool = [q for e in index.knowledge.entries for q in (e.question, *e.alternates)]
    noise = ["혹시", "좀", "알려주세요", "궁금해요", "수익률", "금리는", "코스피"]
    questions = []
    for _ in range(count):
        words = rng.choice(pool).split()
        if len(words) > 2 and rng.random() < 0.3:
            words = words[: rng.randint(2, len(words))]
        if rng.random() < 0.3:
            words.append(rng.choice(noise))
        questions.append(" ".join(words))
    return questions


def written_questions(paths: list[Path], count: int, seed: int = 7) -> list[str]:
    """`count` messages drawn from question sets (tests/eval): as people write them, with the
    company first, typos and two questions in one; far longer than the FAQ's questions."""
    from bot.evaluation import load_questions

    pool = [q.question for path in paths for q in load_questions(path)]
    return random.Random(seed).sample(pool, min(count, len(pool)))


def grown_corpus(base: KnowledgeIndex, size: int, seed: int = 11
                 ) -> tuple[list[Passage], list[list[str]]]:
    """`size` synthetic passages built from the real passages' tokens plus new terms."""
    rng = random.Random(seed)
    real_tokens = [list(doc.keys()) for doc in base.bm25.doc_freqs]
    template = base.knowledge.passages[0] if base.knowledge.passages else None
    passages, corpus = [], []
    for n in range(size):
        tokens = list(rng.choice(real_tokens))
        rng.shuffle(tokens)
        tokens = tokens[: rng.randint(8, max(9, len(tokens)))]
        # New vocabulary: a long tail of terms that only a few documents share.
        tokens += [f"용어{int(rng.paretovariate(1.2) * 10) % (size // 2 + 1)}"
                   for _ in range(rng.randint(5, 30))]
        corpus.append(tokens)
        passages.append(Passage(
            id=f"synthetic#{n}", document_title="합성 문서", heading=f"구간 {n}",
            text=" ".join(tokens), category=template.category if template else "fund",
            sources=template.sources if template else (), as_of=template.as_of if template
            else base.knowledge.entries[0].as_of, path=Path("synthetic.md"), line=1,
        ))
    return passages, corpus


def measure(index: KnowledgeIndex, questions: list[str], baseline_limit: int, passes: int = 1
            ) -> dict[str, object]:
    """Median and p95 of each stage; `passes` answers every question that many times, and
    "passes" holds each pass's answer median and p95 (the first is the table's)."""
    rules = Settings().answering_rules()
    tokenize, decide, render, totals = [], [], [], []
    for q in questions:
        tokenize.append(_timed(lambda q=q: index.analyzer.tokens(q)))
        start = time.perf_counter_ns()
        result = answer(q, index, rules)
        mid = time.perf_counter_ns()
        render_answer(result, index.knowledge)
        end = time.perf_counter_ns()
        decide.append((mid - start) / 1e6)
        render.append((end - mid) / 1e6)
        totals.append((end - start) / 1e6)

    again = [_percentiles([_timed(lambda q=q: answer(q, index, rules)) for q in questions])
             for _ in range(passes - 1)]

    ours, theirs = [], []
    for q in questions[:baseline_limit]:
        terms = index.parse(q).terms
        ours.append(_timed(lambda t=terms: index.scores(t)))
        theirs.append(_timed(lambda t=terms: index.bm25.get_scores(list(t))))
        if terms and not np.allclose(index.scores(terms), index.bm25.get_scores(list(terms))):
            raise AssertionError(f"postings and get_scores disagree on {q!r}")
    return {
        "tokenize": _percentiles(tokenize), "answer": _percentiles(decide),
        "render": _percentiles(render), "total": _percentiles(totals),
        "scores": _percentiles(ours), "get_scores": _percentiles(theirs),
        "passes": [_percentiles(decide), *again],
    }


def run_benchmark(settings: Settings, sizes: list[int], queries: int, passes: int = 1,
                  reloads: bool = True, written: list[Path] | None = None) -> None:
    knowledge = load_knowledge(settings.knowledge_dir)
    analyzer = make_analyzer(settings.analyzer, knowledge.glossary)
    rss_start = _rss_mb()
    build_s = time.perf_counter()
    real = KnowledgeIndex(knowledge, analyzer)
    build_s = time.perf_counter() - build_s
    questions = bench_questions(real, queries)
    rows = [("real", len(real), build_s, _rss_mb() - rss_start,
             measure(real, questions, queries, passes))]
    if written:
        messages = written_questions(written, queries)
        rows.append(("written", len(real), build_s, 0.0,
                     measure(real, messages, len(messages), passes)))

    for size in sizes:
        gc.collect()
        before = _rss_mb()
        passages, corpus = grown_corpus(real, size)
        grown_kb = dataclasses.replace(knowledge, passages=(*knowledge.passages, *passages))
        real_corpus = [list(_expand(d)) for d in real.bm25.doc_freqs]
        start = time.perf_counter()
        grown = KnowledgeIndex(grown_kb, analyzer, corpus=[*real_corpus, *corpus])
        elapsed = time.perf_counter() - start
        baseline = queries if size <= 10_000 else max(30, queries // 10)
        rows.append(("grown", len(grown), elapsed, _rss_mb() - before,
                     measure(grown, questions, baseline, passes)))
        del grown, grown_kb, passages, corpus

    print(f"analyzer {analyzer.name}; {queries} questions per corpus; times in ms (median / p95)")
    header = (f"{'corpus':7} {'docs':>7} {'build s':>8} {'+RSS MB':>8} | {'tokenize':>13} | "
              f"{'answer':>13} | {'render':>13} | {'total':>13} || {'scores':>13} | "
              f"{'get_scores':>15} | speed-up")
    print(header)
    print("-" * len(header))
    for name, docs, build, rss, m in rows:
        cells = " | ".join(f"{m[k][0]:5.2f} / {m[k][1]:5.2f}"
                           for k in ("tokenize", "answer", "render", "total"))
        ratio = m["get_scores"][0] / max(m["scores"][0], 1e-6)
        print(f"{name:7} {docs:7d} {build:8.2f} {rss:8.1f} | {cells} || "
              f"{m['scores'][0]:5.2f} / {m['scores'][1]:5.2f} | "
              f"{m['get_scores'][0]:6.2f} / {m['get_scores'][1]:6.2f} | {ratio:7.1f}x")
    if passes > 1:
        print(f"\nanswer in each of {passes} passes over the questions (median / p95; later "
              "passes find the words met before looked up)")
        for name, docs, _, _, m in rows:
            cells = ", ".join(f"{median:.2f} / {p95:.2f}" for median, p95 in m["passes"])
            print(f"{name:7} {docs:7d} | {cells}")
    print(f"peak RSS of this process: {_peak_rss_mb():.0f} MB")
    run_batch_benchmark(real, questions)
    if reloads:
        run_reload_benchmark(settings, [s for s in sizes if s <= 10_000] or [10_000])


def _beside_a_busy_thread(work: Callable[[], object]) -> tuple[float, float]:
    """Run `work` while another thread runs Python non-stop, as the event loop does under a
    burst: the seconds it takes, and how many loop turns per second the busy thread got."""
    turns, stop = 0, threading.Event()

    def busy() -> None:
        nonlocal turns
        while not stop.is_set():
            turns += 1

    thread = threading.Thread(target=busy)
    thread.start()
    start = time.perf_counter()
    try:
        work()
    finally:
        elapsed = time.perf_counter() - start
        stop.set()
        thread.join()
    return elapsed, turns / elapsed


def run_batch_benchmark(index: KnowledgeIndex, questions: list[str], batch: int = 16) -> None:
    """Questions answered one by one or in batches (as bot.services.OffLoopAnswerer does under
    load), each beside a busy thread: time per question, and the busy thread's progress."""
    rules = Settings().answering_rules()
    runs: dict[str, list[tuple[float, float]]] = {"one by one": [], f"batches of {batch}": []}
    for _ in range(3):
        runs["one by one"].append(_beside_a_busy_thread(
            lambda: [answer(q, index, rules) for q in questions]))
        runs[f"batches of {batch}"].append(_beside_a_busy_thread(
            lambda: [answer_many(questions[i:i + batch], index, rules)
                     for i in range(0, len(questions), batch)]))
    print(f"\nanswering {len(questions)} questions beside a busy Python thread (median of 3):")
    alone_turns = statistics.median(t for _, t in runs["one by one"])
    for name, results in runs.items():
        seconds = statistics.median(s for s, _ in results)
        turns = statistics.median(t for _, t in results)
        print(f"  {name:14} {seconds / len(questions) * 1000:5.2f} ms per question; busy "
              f"thread {turns / 1e6:5.2f} M turns/s ({turns / alone_turns:.1f}x one by one)")


def _expand(freqs: dict[str, int]) -> list[str]:
    return [term for term, tf in freqs.items() for _ in range(tf)]


def write_grown_knowledge(source: Path, target: Path, passages: int, seed: int = 5) -> Path:
    """A copy of the knowledge folder plus one policy document of `passages` sections made
    of real sentences, so that a reload analyzes real Korean text end to end."""
    import shutil

    shutil.copytree(source, target, dirs_exist_ok=True)
    knowledge = load_knowledge(source)
    sentences = [s.strip() + "." for d in knowledge.documents for s in d.answer.split(".")
                 if len(s.strip()) > 10]
    rng = random.Random(seed)
    lines = ["---", "title: 합성 정책 문서", "sources: [S1]", "as_of: 2025-12-04",
             "category: fund", "---"]
    for n in range(passages):
        lines.append(f"## 구간 {n}")
        lines.append(" ".join(rng.sample(sentences, k=min(3, len(sentences)))))
    (target / "policy" / "zz-grown.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


async def _measure_reload(index: KnowledgeIndex) -> tuple[float, float, int]:
    """Reload `index`'s folder as the bot does; the time and the longest event-loop stall."""
    from bot.reloading import LoopLagMonitor, rebuild

    with LoopLagMonitor(interval=0.002) as lag:
        start = time.perf_counter()
        fresh = await asyncio.to_thread(rebuild, index)
        elapsed = time.perf_counter() - start
        await asyncio.sleep(0.01)
    return elapsed, lag.longest, len(fresh)


def run_reload_benchmark(settings: Settings, sizes: list[int]) -> None:
    import tempfile

    print("\nreload: rebuild in a worker thread while the event loop runs (seconds / ms)")
    print(f"{'knowledge':>22} {'docs':>7} {'reload s':>9} {'longest loop stall ms':>22}")
    base = load_knowledge(settings.knowledge_dir)
    analyzer = make_analyzer(settings.analyzer, base.glossary)
    for size in [0, *sizes]:
        with tempfile.TemporaryDirectory() as tmp:
            root = (write_grown_knowledge(settings.knowledge_dir, Path(tmp) / "k", size)
                    if size else settings.knowledge_dir)
            index = KnowledgeIndex(load_knowledge(root), analyzer)
            elapsed, stall, docs = asyncio.run(_measure_reload(index))
        label = "real" if not size else f"real + {size:,} passages"
        print(f"{label:>22} {docs:7d} {elapsed:9.2f} {stall * 1000:22.1f}")
