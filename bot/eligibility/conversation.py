"""The guided eligibility check: a few button steps, then the support methods that may fit.

/check (or the button on /start and under the eligibility FAQ answer) starts it. Every step,
option and rule comes from knowledge/eligibility.yaml (bot/eligibility/loading.py reads it), every
other word from the eligibility_* templates, all in the user's language (the file's texts have
English twins); the request the secretariat gets is in Korean. Each step can be skipped,
/cancel ends the check, and a bot restart does not lose it: the conversation state and the
answers are persisted in the database (bot/storage/persistence.py). The result can go to the
secretariat as a consultation request, which arrives in its group like a follow-up and is
answered the same way.

Text typed while a step waits is answered when the knowledge answers it, with a button to
continue the check; anything else gets the step again with its buttons (questions.py asks).

Callback data (bot/keyboards.py): ck:start, ck:a:<step>:<option>, ck:k:<step> (skip),
ck:resume (the current step again), ck:consult, ck:send, ck:keep.
"""

from __future__ import annotations

import contextlib
import logging
import warnings

from sqlalchemy.exc import SQLAlchemyError
from telegram import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Update, User
from telegram.error import TelegramError
from telegram.ext import (
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
)
from telegram.warnings import PTBUserWarning

from bot.eligibility.loading import rules_of
from bot.eligibility.rules import EligibilityRules, Step
from bot.keyboards import KEY, button, in_rows, keyboard, pattern, unpack
from bot.language import speaks
from bot.replies import label, question_in, render, to_plain_text
from bot.services import asker_of, post_followup, services_of
from bot.storage.models import utcnow
from bot.storage.records import Recorded, record_consultation

log = logging.getLogger(__name__)

ASKING, RESULT, CONSENT = "asking", "result", "consent"
# context.user_data[DATA]: {"answers": {step: option or None}, "message_id": the check's message}
DATA = "eligibility"
CHECK = "ck"


def _served_rules(context: ContextTypes.DEFAULT_TYPE, language: str = "ko"
                  ) -> EligibilityRules | None:
    """The rules of the served knowledge, their texts in `language`."""
    rules = rules_of(services_of(context).index.knowledge)
    return rules.in_language(language) if rules is not None else None


def start_button(language: str) -> InlineKeyboardButton:
    return _button("start", language)


def _button(kind: str, language: str, *fields: str) -> InlineKeyboardButton:
    """A button of the check, labelled from eligibility_button.html.j2."""
    return button(label(kind, language, "eligibility_button"), CHECK, *(fields or (kind,)))


def _language(user: User | None, context: ContextTypes.DEFAULT_TYPE) -> str:
    return speaks(user, context.user_data)


def answered(rules: EligibilityRules, answers: dict[str, str | None]
             ) -> list[tuple[str, str | None]]:
    """(step label, chosen label or None when skipped), in step order, for the steps asked."""
    laid_out = []
    for step in rules.steps:
        if step.key in answers:
            option = step.option(answers[step.key])
            laid_out.append((step.label, option.label if option else None))
    return laid_out


# --- the steps --------------------------------------------------------------------------------


def _step_view(rules: EligibilityRules, step: Step, answers: dict[str, str | None],
               language: str) -> tuple[str, InlineKeyboardMarkup]:
    number, total = rules.position(step, answers)
    text = render("eligibility_step", language, step=step, number=number, total=total,
                  answered=answered(rules, answers))
    options = [button(o.label, CHECK, "a", step.key, o.key) for o in step.options]
    return text, keyboard([*in_rows(options), [_button("skip", language, "k", step.key)]])


async def begin(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | int:
    """/check or a "check" button: a fresh check, from its first step."""
    language = _language(update.effective_user, context)
    rules = _served_rules(context, language)
    if update.callback_query:
        await update.callback_query.answer()
    message = update.effective_message
    if rules is None:
        await message.reply_html(render("eligibility_unavailable", language))
        return ConversationHandler.END
    answers: dict[str, str | None] = {}
    step = rules.next_step(answers)
    text, markup = _step_view(rules, step, answers, language)
    sent = await message.reply_html(text, reply_markup=markup)
    context.user_data[DATA] = {"answers": answers, "message_id": sent.message_id}
    return ASKING


async def choose(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | None:
    """An option or 건너뛰기 on the current step: record it, show the next step or the result."""
    query = update.callback_query
    language = _language(query.from_user, context)
    rules = _served_rules(context, language)
    state = context.user_data.get(DATA)
    press = unpack(query.data)
    step_key = press.field(1)
    option_key = press.field(2) if press.field(0) == "a" else None
    if rules is None or state is None or query.message.message_id != state.get("message_id"):
        await _alert(query, "stale", language)
        return None
    answers = state["answers"]
    current = rules.next_step(answers)
    if rules.step(step_key) is None:  # a reload took the step away
        await _alert(query, "changed", language)
        return None
    if current is None or current.key != step_key:
        await _alert(query, "old_step", language)
        return None
    if option_key is not None and current.option(option_key) is None:
        await _alert(query, "changed", language)
        return None
    answers[step_key] = option_key
    await query.answer()
    following = rules.next_step(answers)
    if following is not None:
        text, markup = _step_view(rules, following, answers, language)
        await query.edit_message_text(text, parse_mode="HTML", reply_markup=markup)
        return ASKING
    text, markup = _result_view(context, rules, answers, language)
    await query.edit_message_text(text, parse_mode="HTML", reply_markup=markup)
    return RESULT


# --- typing during the check ------------------------------------------------------------------


def waiting_step(context: ContextTypes.DEFAULT_TYPE) -> Step | None:
    """The step a running check waits on, or None when no check is asking."""
    rules = _served_rules(context)
    state = (context.user_data or {}).get(DATA)
    if rules is None or not state or not isinstance(state.get("answers"), dict):
        return None
    return rules.next_step(state["answers"])


def resume_button(language: str) -> InlineKeyboardButton:
    """"Continue the check" under an answer given while a check is running."""
    return button(label("continue_check", language), CHECK, "resume")


async def remind(update: Update, context: ContextTypes.DEFAULT_TYPE, typed: bool) -> None:
    """The running check's current step again, as a new message with its buttons (the old
    one loses them); `typed`: the user typed instead of pressing, which the reminder says."""
    language = _language(update.effective_user, context)
    rules, state = _served_rules(context, language), context.user_data.get(DATA)
    step = waiting_step(context)
    if rules is None or state is None or step is None:
        return
    step = rules.step(step.key)
    text, markup = _step_view(rules, step, state["answers"], language)
    if typed:
        text = render("eligibility_reminder", language) + "\n\n" + text
    old = state.get("message_id")
    sent = await update.effective_message.reply_html(text, reply_markup=markup)
    state["message_id"] = sent.message_id
    if old:  # one check, one set of live buttons
        with contextlib.suppress(TelegramError):
            await context.bot.edit_message_reply_markup(update.effective_chat.id, old,
                                                        reply_markup=None)


async def resume(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    """"Continue the check": its current step again, with its buttons."""
    await update.callback_query.answer()
    await remind(update, context, typed=False)
    return ASKING


async def _alert(query: CallbackQuery, kind: str, language: str) -> None:
    await query.answer(label(kind, language, "eligibility_alert"), show_alert=True)


# --- the result -------------------------------------------------------------------------------


def _result_view(context: ContextTypes.DEFAULT_TYPE, rules: EligibilityRules,
                 answers: dict[str, str | None], language: str
                 ) -> tuple[str, InlineKeyboardMarkup]:
    knowledge = services_of(context).index.knowledge
    outcome = rules.evaluate(answers)
    entries = {e.id: e for e in knowledge.entries}
    shown = [entries[i] for i in outcome.entries if i in entries]
    numbers = {e.id: n for n, e in enumerate(shown, start=1)}
    can_consult = services_of(context).settings.secretariat_chat_id is not None
    text = render("eligibility_result", language, answered=answered(rules, answers),
                  outcome=outcome, numbers=numbers, can_consult=can_consult)
    rows = [[button(f"{numbers[e.id]}. {question_in(e, language)}", "a", e.id)] for e in shown]
    if can_consult:
        rows.append([_button("consult", language)])
    rows.append([_button("again", language, "start")])
    return text, keyboard(rows)


# --- the consultation request -----------------------------------------------------------------


def _summaries(rules: EligibilityRules, answers: dict[str, str | None], language: str = "ko"
               ) -> tuple[str, str]:
    """(one line for lists, the answers and result laid out) as plain text, in `language`:
    Korean for the secretariat, the user's for the user."""
    rules = rules.in_language(language)
    outcome = rules.evaluate(answers)
    laid_out = answered(rules, answers)
    line = to_plain_text(render("eligibility_summary", language, answered=laid_out,
                                outcome=outcome, one_line=True))
    details = to_plain_text(render("eligibility_summary", language, answered=laid_out,
                                   outcome=outcome, one_line=False))
    return " ".join(line.split()), details


async def _finished_check(query: CallbackQuery, context: ContextTypes.DEFAULT_TYPE
                          ) -> tuple[EligibilityRules, dict] | None:
    """The rules and the answers of the check a result button belongs to; None (and a
    pop-up saying the check is over) when there is none any more."""
    rules = _served_rules(context)
    state = context.user_data.get(DATA)
    if rules is None or state is None:
        await _alert(query, "stale", _language(query.from_user, context))
        return None
    return rules, state


async def consult(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | None:
    """"사무국에 상담 요청" on the result: say exactly what would be shared, and ask."""
    query = update.callback_query
    current = await _finished_check(query, context)
    if current is None:
        return None
    rules, state = current
    await query.answer()
    user = update.effective_user
    language = _language(user, context)
    _, details = _summaries(rules, state["answers"], language)
    await query.message.reply_html(
        render("eligibility_consent", language, name=user.full_name, username=user.username,
               details=details),
        reply_markup=keyboard([[_button("send", language), _button("keep", language)]]))
    return CONSENT


async def send(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str | int | None:
    """Consent given: record the request as a follow-up and post it to the secretariat."""
    query = update.callback_query
    current = await _finished_check(query, context)
    if current is None:
        return None
    rules, state = current
    line, details = _summaries(rules, state["answers"])
    services = services_of(context)
    try:
        async with services.database.session() as session:
            recorded: Recorded = await record_consultation(
                session, asker_of(update.effective_user), query.message.chat_id,
                state["message_id"], line, details, utcnow())
    except SQLAlchemyError:
        log.exception("consultation request not stored")
        await query.answer(to_plain_text(render("unavailable", _language(query.from_user,
                                                                         context))),
                           show_alert=True)
        return None
    await query.answer()
    context.user_data.pop(DATA, None)
    await query.edit_message_text(
        render("eligibility_sent", _language(query.from_user, context),
               reference=recorded.followup_id, again=recorded.duplicate),
        parse_mode="HTML")
    if not recorded.duplicate:
        await post_followup(context.application, recorded.followup_id)
    return ConversationHandler.END


async def keep(update: Update, context: ContextTypes.DEFAULT_TYPE) -> str:
    """Consent refused: nothing is sent; the result stays, its button can be pressed again."""
    query = update.callback_query
    await query.answer()
    await query.edit_message_text(render("eligibility_kept", _language(query.from_user, context)),
                                  parse_mode="HTML")
    return RESULT


# --- ending -----------------------------------------------------------------------------------


async def cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> int:
    """/cancel during the check: forget the answers and take the buttons away."""
    state = context.user_data.pop(DATA, None)
    if state and state.get("message_id"):
        # Too old to edit, or already without buttons: either way nothing to take away.
        with contextlib.suppress(TelegramError):
            await context.bot.edit_message_reply_markup(update.effective_chat.id,
                                                        state["message_id"], reply_markup=None)
    await update.effective_message.reply_html(
        render("eligibility_cancelled", _language(update.effective_user, context), idle=False))
    return ConversationHandler.END


async def nothing_to_cancel(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    await update.effective_message.reply_html(
        render("eligibility_cancelled", _language(update.effective_user, context), idle=True))


async def stale_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A check button after the check ended (sent, cancelled, or started again)."""
    await _alert(update.callback_query, "stale", _language(update.effective_user, context))


def handlers() -> list[BaseHandler]:
    """The check's conversation (persistent, named "eligibility"), then what answers its
    commands and buttons when no check is running. Before the question handlers."""
    restart = CallbackQueryHandler(begin, pattern=pattern(CHECK, "start"))
    with warnings.catch_warnings():
        # Buttons belong to the conversation of the user and chat, not to one message; each
        # press is checked against the message the check is running in.
        warnings.filterwarnings("ignore", message=".*per_message=False.*",
                                category=PTBUserWarning)
        conversation = ConversationHandler(
            entry_points=[CommandHandler("check", begin), restart],
            states={
                ASKING: [CallbackQueryHandler(choose, pattern=pattern(CHECK, "a", KEY, KEY)),
                         CallbackQueryHandler(choose, pattern=pattern(CHECK, "k", KEY)),
                         CallbackQueryHandler(resume, pattern=pattern(CHECK, "resume"))],
                RESULT: [CallbackQueryHandler(consult, pattern=pattern(CHECK, "consult"))],
                CONSENT: [CallbackQueryHandler(send, pattern=pattern(CHECK, "send")),
                          CallbackQueryHandler(keep, pattern=pattern(CHECK, "keep")),
                          CallbackQueryHandler(consult, pattern=pattern(CHECK, "consult"))],
            },
            fallbacks=[CommandHandler("cancel", cancel)],
            allow_reentry=True, per_chat=True, per_user=True,
            name="eligibility", persistent=True,
        )
    return [
        conversation,
        CommandHandler("cancel", nothing_to_cancel),
        CallbackQueryHandler(stale_button, pattern=f"^{CHECK}:"),
    ]
