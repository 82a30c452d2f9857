"""The knowledge folder as the bot serves it: the knowledge base that index/ searches (FAQ,
policy, sources, glossary) and the guided check's rules (bot/eligibility/), read and checked
together so that `maxbot check`, /reload and the start list every error of both at once.
"""

from __future__ import annotations

from pathlib import Path

from bot.eligibility.loading import read_rules, remember_rules
from index import KnowledgeBase, KnowledgeError, KnowledgeIndex, KnowledgeInvalid, build_index
from index.analyzer import make_analyzer
from index.knowledge import read_knowledge


def load_knowledge(root: Path | str) -> KnowledgeBase:
    """Read and validate every file under `root`; raise KnowledgeInvalid listing all errors.
    The guided check's rules are then `rules_of(knowledge)`."""
    errors: list[KnowledgeError] = []
    knowledge = read_knowledge(Path(root), errors)
    if knowledge is None:
        raise KnowledgeInvalid(errors)
    rules = read_rules(knowledge, errors)
    if errors:
        raise KnowledgeInvalid(errors)
    remember_rules(knowledge, rules)
    return knowledge


def load_index(root: Path | str, analyzer: str = "kiwi", cache_dir: Path | None = None
               ) -> KnowledgeIndex:
    """Load and validate the knowledge folder and index it; raises KnowledgeInvalid.
    `cache_dir`: where the analyzed texts are kept between starts (settings.cache_dir)."""
    knowledge = load_knowledge(root)
    return build_index(knowledge, make_analyzer(analyzer, knowledge.glossary), cache_dir)
