"""The knowledge base's texts as the analyzer read them, kept on disk between starts.

Building the index analyzes every FAQ text and policy passage with Kiwi: 1.2 s of the 4.5 s
a bot takes to start, and of every process the tests start. A text's tokens depend on the
text and the analyzer only (Kiwi's version, the glossary's words and aliases, the code that
picks the terms: its fingerprint), so they are kept in a JSON file named by the fingerprint.
A text not in the file is analyzed; the file is written again, whole, when any was: to a
temporary file renamed over it, so that processes starting together never read half of one.
The file is a speed-up only: one that cannot be read or written is analyzed around.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

Analyze = Callable[[list[str]], list[list[str]]]
# The file keeps the texts of other builds while they are at most this many times this one's.
KEEP_FACTOR = 3


class TokenCache:
    """The tokens of the texts one index build analyzes (see the module's docstring)."""

    def __init__(self, directory: Path, fingerprint: str) -> None:
        self.path = Path(directory) / f"tokens-{fingerprint[:20]}.json"
        self._known = self._read()
        self._used: dict[str, list[str]] = {}
        self._analyzed = 0

    def _read(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("token cache %s not read (%s): the knowledge is analyzed", self.path, exc)
            return {}
        if not (isinstance(data, dict) and all(
                isinstance(tokens, list) and all(isinstance(t, str) for t in tokens)
                for tokens in data.values())):
            log.warning("token cache %s is not text -> tokens: the knowledge is analyzed",
                        self.path)
            return {}
        return data

    def tokens(self, texts: list[str], analyze: Analyze, kind: str = "") -> list[list[str]]:
        """Each text's tokens: from the file, or from `analyze` (all missing ones at once).
        `kind` names another reading of the same texts ("nearest": a word's nearest words)."""
        keys = [f"{kind}\0{text}" if kind else text for text in texts]
        missing = [(k, t) for k, t in dict.fromkeys(zip(keys, texts, strict=True))
                   if k not in self._known]
        if missing:
            self._known.update(zip([k for k, _ in missing], analyze([t for _, t in missing]),
                                   strict=True))
            self._analyzed += len(missing)
        for key in keys:
            self._used[key] = self._known[key]
        return [list(self._known[key]) for key in keys]

    def save(self) -> None:
        """Write the file if any text was analyzed: with the texts it held (other knowledge
        folders share it: a test's copy with one more entry), unless they are many more than
        this build's, which are then kept alone (knowledge since edited)."""
        if not self._analyzed:
            return
        kept = self._known if len(self._known) <= KEEP_FACTOR * len(self._used) else self._used
        written = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=self.path.parent,
                                             suffix=".tmp", delete=False) as out:
                written = Path(out.name)
                json.dump(kept, out, ensure_ascii=False)
            os.replace(written, self.path)
        except OSError as exc:
            log.warning("token cache %s not written (%s)", self.path, exc)
            if written is not None:
                written.unlink(missing_ok=True)
            return
        log.info("token cache %s: %d texts analyzed, %d kept", self.path, self._analyzed,
                 len(kept))
