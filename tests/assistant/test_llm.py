"""The LLM composer with LangChain's fake chat model (no network): the line format, the checks on
every sentence, streaming without retraction, the fallbacks, and the gates it runs behind."""

from __future__ import annotations

import re
from typing import Any

import pytest

from assistant.chat import Assistant
from assistant.compose import markers
from assistant.compose.llm import SEPARATOR, LineVerifier, build_chat_model, complete_lines, verify_reply
from assistant.errors import SettingsError
from assistant.settings import LLMSettings, Settings
from assistant.types import Answer
from ingest.text import Tokenizer
from ingest.types import Passage, ScoredPassage
from tests.assistant.test_chat import check_contract
from tests.fakes import first_sentence, make_scripted_chat_model, prompt_passages

TOKENIZE = Tokenizer()
QUESTION = "Who should supervise peer workers?"


def _passage(text: str) -> ScoredPassage:
    return ScoredPassage(Passage(id=text[:8], card_id="c", ordinal=0, heading="h", text=text, section="strategy",
                                 theme=None, strategy=None, strategy_title=None, meta={}), 1.0)


PASSAGES = [_passage("Peer workers valued supervision from an experienced peer supervisor."),
            _passage("Managers set aside 30 minutes a week for reflective supervision.")]


def test_each_line_is_checked_against_the_passages_it_cites() -> None:
    lines = [
        "Peer workers valued supervision from an experienced peer supervisor [1].",
        "- Managers set aside 30 minutes a week for reflective supervision [2][1]",
        "Managers set aside 45 minutes a week for supervision [2].",
        "Supervision from a peer supervisor is valued [7].",
        "Bananas grow quickly in tropical plantations [1].",
        "Peer workers valued supervision [1] from an experienced peer supervisor [1].",
        "Peer workers valued supervision from an experienced supervisor who was a peer [1].",
        "Supervision [1].",
        "A sentence with no passage number.",
    ]
    verdicts = verify_reply("\n".join(lines), PASSAGES, TOKENIZE, LLMSettings())
    assert [v.kept for v in verdicts] == [True, True, False, False, False, False, False, False, False]
    assert verdicts[1].text == "Managers set aside 30 minutes a week for reflective supervision." and verdicts[1].passages == (2, 1)
    reasons = [v.reason for v in verdicts[2:]]
    assert "45" in str(reasons[0]) and "not given" in str(reasons[1]) and "content words" in str(reasons[2])
    assert "inside the sentence" in str(reasons[3]) and "repeats" in str(reasons[4])
    assert "fewer than 3" in str(reasons[5]) and "ending with passage numbers" in str(reasons[6])


def test_support_threshold_comes_from_settings() -> None:
    line = "Peer workers valued supervision from kind managers [1]."
    strict, lenient = LLMSettings(llm_min_support=0.9), LLMSettings(llm_min_support=0.5)
    assert not LineVerifier(PASSAGES, TOKENIZE, strict).check(line).kept
    assert LineVerifier(PASSAGES, TOKENIZE, lenient).check(line).kept


def test_model_markup_is_made_inert() -> None:
    v = LineVerifier(PASSAGES, TOKENIZE, LLMSettings()).check(
        "<b>Peer workers</b> valued **supervision** from an experienced peer supervisor [1]")
    assert v.kept and v.text == "bPeer workers/b valued supervision from an experienced peer supervisor."


def test_tokens_are_buffered_until_a_line_is_complete() -> None:
    assert list(complete_lines(["Peer wor", "kers [1].\nMan", "agers [2]", ".\n\n", "last [1]"])) == [
        "Peer workers [1].", "Managers [2].", "last [1]"]


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_chat_openai_is_built_from_settings() -> None:
    model = build_chat_model(LLMSettings(llm_base_url="http://127.0.0.1:8099/v1", llm_model="smol",
                                         llm_timeout_s=7.0, llm_max_retries=3, llm_temperature=0.2, llm_seed=5,
                                         llm_max_tokens=99))
    assert type(model).__name__ == "ChatOpenAI"
    assert (model.model_name, model.openai_api_base, model.request_timeout, model.max_retries) == (
        "smol", "http://127.0.0.1:8099/v1", 7.0, 3)
    assert (model.temperature, model.seed, model.extra_body) == (0.2, 5, {"max_tokens": 99})
    assert model.openai_api_key is not None and model.openai_api_key.get_secret_value() == "not-needed"
    with pytest.raises(SettingsError, match="needs an endpoint"):
        build_chat_model(LLMSettings())


# ------------------------------------------------------------------------------------------------
# Through the assistant


def _llm(fake_assistant: Assistant, script: Any, **settings: Any) -> tuple[Assistant, Any]:
    model = make_scripted_chat_model(script, fail_after=settings.pop("fail_after", None))
    s = fake_assistant.settings.replace(composer="llm", **settings)
    return Assistant(s, embedder=fake_assistant.embedder, store=fake_assistant.store, chat_model=model), model


def _grounded(fake_assistant: Assistant, question: str = QUESTION) -> Answer:
    return fake_assistant.ask(question)


def _good_lines(prompt: str, n: int = 3) -> list[str]:
    return [f"{first_sentence(text)} [{i}]" for i, text in list(prompt_passages(prompt).items())[:n]]


def _stream(assistant: Assistant, question: str = QUESTION) -> tuple[list[str], Answer]:
    events = list(assistant.ask_stream(question))
    *pieces, answer = events
    assert isinstance(answer, Answer) and all(isinstance(p, str) for p in pieces)
    return pieces, answer


@pytest.mark.slow  # over 0.3 s: `make test` runs it, the `make check` unit tier does not
def test_verified_sentences_stream_and_unsupported_ones_are_never_shown(fake_assistant: Assistant) -> None:
    def script(prompt: str) -> str:
        return "\n".join(_good_lines(prompt)[:2] + ["A made-up trial proved this works [42].",
                                                    "Bananas are an excellent source of potassium [1]."]
                         + _good_lines(prompt)[2:3])

    assistant, model = _llm(fake_assistant, script)
    pieces, answer = _stream(assistant)
    assert answer.status == "answered" and len(pieces) == 3
    assert answer.answer.startswith("".join(pieces)), "what was streamed is the start of the answer"
    assert "made-up" not in answer.answer and "Bananas" not in answer.answer
    check_contract(answer, assistant.settings.index.corpus_dir)
    numbers = {c.n for c in answer.citations}
    for piece in pieces:  # every shown sentence ends with markers that resolve to the answer's citations
        assert re.search(r"(\[\d+\])+$", piece) and set(markers(piece)) <= numbers, piece
    stats = answer.trace["llm"]
    assert (stats["generated"], stats["kept"], stats["fallback"]) == (5, 3, "none")
    assert [d["reason"] for d in stats["dropped"]] == ["cites passage 42, which it was not given",
                                                      ("only 0% of its content words are in the cited passages "
                                                       "(needs 80%)")]
    # The prompt numbers only the passages the relevance gate kept (and at most llm_max_passages).
    gated = {r["chunk_id"] for r in answer.retrieved}
    assert 1 <= len(prompt_passages(model.prompts[-1])) <= min(len(gated), assistant.settings.llm.llm_max_passages)
    assert "Who should supervise peer workers?" in model.prompts[-1]


def test_nothing_verifiable_falls_back_to_the_grounded_answer(fake_assistant: Assistant) -> None:
    assistant, _ = _llm(fake_assistant, lambda p: "Here is my answer.\nPeer work is great [9].")
    pieces, answer = _stream(assistant)
    assert pieces == [] and answer.answer == _grounded(fake_assistant).answer
    assert answer.trace["llm"]["fallback"] == "replaced" and answer.trace["llm"]["kept"] == 0


def test_too_few_after_some_were_shown_appends_the_grounded_answer(fake_assistant: Assistant) -> None:
    assistant, _ = _llm(fake_assistant, lambda p: "\n".join(_good_lines(p, 1) + ["Invented [8]."]),
                        llm_min_sentences=3)
    pieces, answer = _stream(assistant)
    assert len(pieces) == 2 and pieces[1].startswith(SEPARATOR)
    assert answer.answer.startswith(pieces[0] + SEPARATOR), "the verified sentence stays; nothing is retracted"
    grounded = _grounded(fake_assistant)
    assert answer.trace["llm"]["fallback"] == "appended"
    check_contract(answer, assistant.settings.index.corpus_dir)
    assert {c.quote for c in grounded.citations} <= {c.quote for c in answer.citations}
    assert answer.not_covered == grounded.not_covered


def test_a_model_failing_mid_reply_keeps_what_was_shown(fake_assistant: Assistant) -> None:
    assistant, _ = _llm(fake_assistant, lambda p: "\n".join(_good_lines(p, 3)), fail_after=1)
    pieces, answer = _stream(assistant)
    assert answer.answer.startswith(pieces[0]) and answer.trace["llm"]["fallback"] == "appended"
    assert "ConnectionError" in answer.trace["llm"]["error"]
    check_contract(answer, assistant.settings.index.corpus_dir)


def test_an_unreachable_endpoint_falls_back(fake_assistant: Assistant) -> None:
    s = fake_assistant.settings.replace(composer="llm", llm_base_url="http://127.0.0.1:9/v1", llm_timeout_s=2.0,
                                        llm_max_retries=0)
    answer = Assistant(s, embedder=fake_assistant.embedder, store=fake_assistant.store).ask(QUESTION)
    assert answer.answer == _grounded(fake_assistant).answer and answer.trace["llm"]["fallback"] == "replaced"
    assert "Connection" in answer.trace["llm"]["error"]


@pytest.mark.parametrize("question, status", [
    ("I want to kill myself tonight", "crisis"),
    ("What is the capital of France?", "abstained"),
    ("What pay rates should we offer peer workers?", "abstained"),
])
def test_the_gates_run_before_the_model(fake_assistant: Assistant, question: str, status: str) -> None:
    assistant, model = _llm(fake_assistant, lambda p: "\n".join(_good_lines(p)))
    answer = assistant.ask(question)
    assert answer.status == status == _grounded(fake_assistant, question).status
    assert model.prompts == [], "the model is never asked when a gate decides"


def test_not_covered_is_kept(fake_assistant: Assistant) -> None:
    question = "What did the US state-level work on certified peer specialists and reimbursement find?"
    grounded = _grounded(fake_assistant, question)
    assistant, _ = _llm(fake_assistant, lambda p: "\n".join(_good_lines(p)))
    answer = assistant.ask(question)
    assert grounded.not_covered and set(grounded.not_covered) <= set(answer.not_covered)
    assert "**Not covered.**" in answer.answer


def test_the_grounded_default_does_not_stream(fake_assistant: Assistant) -> None:
    events = list(fake_assistant.ask_stream(QUESTION))
    assert len(events) == 1 and isinstance(events[0], Answer)
    assert events[0].answer == fake_assistant.ask(QUESTION).answer and "llm" not in events[0].trace


def test_settings_object_has_the_llm_knobs() -> None:
    s = Settings(llm_min_support=0.7, llm_min_sentences=3, llm_max_tokens=128)
    assert (s.llm.llm_min_support, s.llm.llm_min_sentences, s.llm.llm_max_tokens) == (0.7, 3, 128)
