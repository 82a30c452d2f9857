"""`maxbot check` and the loader report broken knowledge files with their path and line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.cli import main
from index import KnowledgeInvalid, load_knowledge
from tests.conftest import KNOWLEDGE, write_knowledge


def run_check(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "--knowledge-dir", str(root)])
    return code, capsys.readouterr().out


def test_the_projects_knowledge_base_passes_check(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_check(KNOWLEDGE, capsys)
    assert code == 0, out
    assert "ok:" in out and "error" not in out


def test_bad_yaml_is_reported_with_file_and_line(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = write_knowledge(tmp_path / "kb", {"faq/broken.yaml": (
        "category: fund\n"
        "entries:\n"
        "  - id: broken\n"
        "    question: 깨진 항목\n"
        "    answer: [닫히지 않은 목록\n"
        "    sources: [S1]\n"
    )})
    code, out = run_check(root, capsys)
    assert code == 1
    assert f"{root / 'faq' / 'broken.yaml'}:" in out
    line = int(out.split("broken.yaml:")[1].split(":")[0])
    assert 5 <= line <= 6, out


def test_check_names_a_broken_faq_file_first_and_marks_what_follows_from_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "kb"
    shutil.copytree(KNOWLEDGE, root)
    faq, rules = root / "faq" / "contact.yaml", root / "eligibility.yaml"
    # An entry the rules cite loses its answer: the entry is the error, the rule follows.
    text = faq.read_text(encoding="utf-8")
    start = text.index("  - id: contact-briefings")
    answer = text.index("    answer:", start)
    end = text.index("\n    sources:", answer)
    faq.write_text(text[:answer] + "    answer: ''" + text[end:], encoding="utf-8")
    rules.write_text(rules.read_text(encoding="utf-8").replace(
        "entries: [gov-execution-start, contact-briefings]",
        "entries: [gov-execution-start, contact-briefings, no-such-entry]"), encoding="utf-8")

    code, out = run_check(root, capsys)
    assert code == 1
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 3, out
    first, typo, knock_on = errors
    assert f"{faq}:" in first and "entry 'contact-briefings' has no answer" in first
    # A typo in the rules file is its own error; the entry the broken file lost follows.
    assert f"{rules}:" in typo and "'no-such-entry'" in typo and "follows" not in typo
    assert f"{rules}:" in knock_on and "unknown FAQ entry 'contact-briefings'" in knock_on
    entry_line = first.split(f"{faq}:")[1].split(":")[0]
    assert knock_on.endswith(f"(follows from {faq}:{entry_line}: fix that first)")


def test_entry_without_source_or_date_names_the_entry_and_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_knowledge(tmp_path / "kb", {"faq/extra.yaml": """\
        category: fund
        entries:
          - id: no-date
            question: 날짜 없는 항목
            answer: 답
            sources: [S1]
          - id: no-source
            question: 출처 없는 항목
            answer: 답
            as_of: 2025-12-04
        """})
    code, out = run_check(root, capsys)
    assert code == 1
    assert f"{root / 'faq' / 'extra.yaml'}:3: entry 'no-date' has no as_of date" in out
    assert f"{root / 'faq' / 'extra.yaml'}:7: entry 'no-source' has no sources" in out


def test_every_problem_of_an_entry_is_listed_at_its_line(tmp_path: Path) -> None:
    """The shape of an entry is declared (index/knowledge.py FaqEntryShape): all that is wrong
    with it is listed at once, a date YAML cannot read among them."""
    root = write_knowledge(tmp_path / "kb", {"faq/broken.yaml": """\
        category: fund
        entries:
          - id: Bad_Id
            question: [목록]
            alternates: 3
            answer: "  "
            sources: S9
            as_of: "2025-13-01"
        """, "faq/date.yaml": """\
        category: fund
        entries:
          - id: month-13
            question: 열세 번째 달?
            answer: 없습니다.
            sources: [S1]
            as_of: 2025-13-01
        """})
    with pytest.raises(KnowledgeInvalid) as caught:
        load_knowledge(root)
    place = f"{root / 'faq' / 'broken.yaml'}:3: entry 'Bad_Id'"
    assert [str(e) for e in caught.value.errors if str(e).startswith(place)] == [
        f"{place}: id must be 1-60 lowercase letters, digits and '-'",
        f"{place}: question must be text",
        f"{place}: alternates must be a list of text",
        f"{place} has no answer",
        f"{place}: unknown source S9 (sources.yaml has S1)",
        f"{place}: as_of '2025-13-01' is not a date (YYYY-MM-DD)",
    ]
    assert any(str(e).startswith(f"{root / 'faq' / 'date.yaml'}:7: invalid YAML: "
                                 "'2025-13-01' is not a date") for e in caught.value.errors)


def test_duplicate_ids_and_empty_answers_and_unknown_sources_are_errors(tmp_path: Path) -> None:
    root = write_knowledge(tmp_path / "kb", {"faq/more.yaml": """\
        category: fund
        entries:
          - id: fund-size
            question: 같은 id
            answer: 답
            sources: [S1]
            as_of: 2025-12-04
          - id: empty-answer
            question: 빈 답
            answer: "  "
            sources: [S1]
            as_of: 2025-12-04
          - id: ghost-source
            question: 없는 출처
            answer: 답
            sources: [S9]
            as_of: 2025-12-04
        """})
    with pytest.raises(KnowledgeInvalid) as caught:
        load_knowledge(root)
    messages = [str(e) for e in caught.value.errors]
    assert any("more.yaml:3: duplicate id 'fund-size' (first at" in m for m in messages)
    assert any("more.yaml:8: entry 'empty-answer' has no answer" in m for m in messages)
    assert any("more.yaml:13: entry 'ghost-source': unknown source S9" in m for m in messages)


def test_policy_document_without_front_matter_is_refused(tmp_path: Path) -> None:
    root = write_knowledge(tmp_path / "kb", {"policy/bare.md": "# 제목\n본문\n"})
    with pytest.raises(KnowledgeInvalid) as caught:
        load_knowledge(root)
    assert str(caught.value.errors[0]).startswith(f"{root / 'policy' / 'bare.md'}:1: ")


def test_policy_documents_are_split_into_passages_at_headings(small_knowledge: Path) -> None:
    (small_knowledge / "policy" / "two.md").write_text(
        "---\ntitle: 두 절\nsources: [S1]\nas_of: 2025-12-04\ncategory: fund\n---\n"
        "# 첫째\n가나다.\n\n## 둘째\n라마바.\n", encoding="utf-8")
    knowledge = load_knowledge(small_knowledge)
    two = [p for p in knowledge.passages if p.path.name == "two.md"]
    assert [(p.heading, p.text, p.line) for p in two] == [("첫째", "가나다.", 7),
                                                          ("둘째", "라마바.", 10)]


def test_stale_entries_are_warned_and_fail_only_in_strict_mode(
        small_knowledge: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["check", "--knowledge-dir", str(small_knowledge), "--max-age-days", "30"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "warning:" in out and "fund-size is as of 2025-12-04" in out
    assert main([*args, "--strict"]) == 1


def test_version_changes_when_an_answer_changes(small_knowledge: Path) -> None:
    before = load_knowledge(small_knowledge).version
    faq = small_knowledge / "faq" / "fund.yaml"
    faq.write_text(faq.read_text(encoding="utf-8").replace("150조원", "151조원"),
                   encoding="utf-8")
    assert load_knowledge(small_knowledge).version != before


def test_a_sources_short_names_and_url_are_checked_at_their_line(tmp_path: Path) -> None:
    """sources.yaml's `short` ({ko: …, en: …}) and `url` (https only) are read into the
    source, and a wrong one is an error at its line like the other keys."""
    root = tmp_path / "kb"
    shutil.copytree(KNOWLEDGE, root)
    sources = root / "sources.yaml"
    text = sources.read_text(encoding="utf-8")
    short = "  short: {ko: 산업부·금융위 보도자료, en: MOTIE·FSC press release}\n"
    assert short in text
    sources.write_text(text.replace(short, short + "  url: https://www.korea.kr/briefing/s1\n"),
                       encoding="utf-8")
    s1 = load_knowledge(root).sources["S1"]
    assert (s1.short_ko, s1.short_en) == ("산업부·금융위 보도자료", "MOTIE·FSC press release")
    assert s1.url == "https://www.korea.kr/briefing/s1"

    line = text[:text.index(short)].count("\n") + 1
    sources.write_text(text.replace(short, "  short: {ko: 보도자료, fr: communiqué}\n"
                                           "  url: http://www.korea.kr/s1\n"), encoding="utf-8")
    with pytest.raises(KnowledgeInvalid) as caught:
        load_knowledge(root)
    said = [str(e) for e in caught.value.errors if e.path == sources]
    assert f"{sources}:{line}: source S1: short must be {{ko: …, en: …}}" in said, said
    assert any(f"{sources}:" in s and "source S1: url 'http://www.korea.kr/s1' is not an https "
               "address" in s for s in said), said
