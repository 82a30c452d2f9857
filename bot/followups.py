"""A follow-up as the secretariat sees it: its post in the group (the question and the entries
closest to it, or a consultation request, with the buttons to act on it), who asked, and the
labels of its statuses and events. Used by the desk's handlers, the poster and the reports.
"""

from __future__ import annotations

from telegram import InlineKeyboardMarkup

from bot.keyboards import button, keyboard
from bot.replies import label, render, to_plain_text
from bot.storage.models import EventKind, FollowUpReason, FollowUpStatus, QuestionStatus
from bot.storage.records import FollowUpCase
from index import FaqEntry, KnowledgeIndex


def status_label(status: FollowUpStatus | str, language: str = "ko") -> str:
    """A follow-up's status in words, from followup_labels.html.j2."""
    return label(f"status:{status}", language, "followup_labels")


def event_label(kind: EventKind | str, language: str = "ko") -> str:
    """What a follow-up's event was, in words, from followup_labels.html.j2."""
    return label(f"event:{kind}", language, "followup_labels")


def question_label(status: QuestionStatus | str, language: str = "ko") -> str:
    """What became of a question, in words, from followup_labels.html.j2."""
    return label(f"question:{status}", language, "followup_labels")


def reason_label(reason: FollowUpReason | str, language: str = "ko") -> str:
    """Why a follow-up was opened, in words, from followup_labels.html.j2."""
    return label(f"reason:{reason}", language, "followup_labels")


def event_labels(language: str = "ko") -> dict[str, str]:
    return {str(kind): event_label(kind, language) for kind in EventKind}


# Why the secretariat closes a follow-up without an answer; the words, which the asker is
# told, are in close_reason.html.j2.
CLOSE_REASONS = ("announced", "undecided", "out_of_scope", "duplicate", "not_a_question")


def close_reason(key: str, language: str = "ko") -> str:
    """What the asker is told about why their question was closed."""
    return to_plain_text(render("close_reason", language, key=key))


def close_reason_keyboard(followup_id: int) -> InlineKeyboardMarkup:
    return keyboard([button(close_reason(key), "sr", followup_id, key)]
                    for key in CLOSE_REASONS)


def asker_name(case: FollowUpCase) -> str:
    person = case.person
    if person is None:
        return str(case.question.person_id)
    return " ".join(p for p in (person.first_name, person.last_name) if p) or str(person.id)


def post_keyboard(followup_id: int) -> InlineKeyboardMarkup:
    return keyboard([[button(label("close"), "sc", followup_id),
                      button(label("gap"), "sg", followup_id)],
                     [button(label("propose"), "sf", followup_id)]])


def draft_keyboard(followup_id: int) -> InlineKeyboardMarkup:
    """Under the group's confirmation that an answer reached the asker: make it an FAQ draft."""
    return keyboard([[button(label("make_draft"), "sf", followup_id)]])


def post_text(case: FollowUpCase, index: KnowledgeIndex) -> str:
    """A question with the entries closest to it; a consultation request (from the
    eligibility check) with the answers and result the asker agreed to share."""
    if case.followup.reason == FollowUpReason.CONSULTATION:
        details = next((e.text for e in case.events
                        if e.kind == EventKind.CONSULTATION and e.text),
                       case.question.text)
        return render("eligibility_consultation_post", case=case, asker_name=asker_name(case),
                      details=details)
    return render("secretariat_post", case=case, asker_name=asker_name(case),
                  near_misses=near_misses(case, index))


def near_misses(case: FollowUpCase, index: KnowledgeIndex) -> list[FaqEntry]:
    """The FAQ entries closest to the question, however far: where the secretariat looks."""
    hits = index.search(index.parse(case.question.text), limit=8)
    return [h.document for h in hits if isinstance(h.document, FaqEntry)][:3]
