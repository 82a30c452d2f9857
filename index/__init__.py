"""Text to tokens to a BM25 index to ranked hits. Knows nothing of Telegram or databases."""

from index.analyzer import Analyzer, KiwiAnalyzer, WhitespaceAnalyzer, make_analyzer
from index.knowledge import (
    Document,
    FaqEntry,
    KnowledgeBase,
    KnowledgeError,
    KnowledgeInvalid,
    Passage,
    load_knowledge,
)
from index.search import Hit, KnowledgeIndex, Query, build_index, load_index

__all__ = [
    "Analyzer",
    "Document",
    "FaqEntry",
    "Hit",
    "KiwiAnalyzer",
    "KnowledgeBase",
    "KnowledgeError",
    "KnowledgeIndex",
    "KnowledgeInvalid",
    "Passage",
    "Query",
    "WhitespaceAnalyzer",
    "build_index",
    "load_index",
    "load_knowledge",
    "make_analyzer",
]
