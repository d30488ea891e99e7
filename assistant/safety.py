"""The crisis gate, checked before anything else: crisis language is routed to help.

Crisis detection is deliberately rule-based and errs towards routing: a missed crisis is far
worse than a manager seeing a crisis message for an ambiguous question. Questions that mention
suicide or self-harm only as a policy, training or evidence topic are not routed.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ingest.text import normalise

log = logging.getLogger(__name__)

CRISIS_MESSAGE = (
    "It sounds like someone may be in danger or thinking about suicide or self-harm. "
    "**If anyone is in immediate danger, call your local emergency number now** (for example 911 in the "
    "US and Canada, 999 or 112 in the UK and Ireland, 000 in Australia, 111 in New Zealand). "
    "For urgent support, contact a crisis line: 988 (US, call or text), Samaritans 116 123 (UK and Ireland), "
    "Lifeline 13 11 14 (Australia), 1737 (New Zealand), or your local crisis service. "
    "If this is about a colleague or someone you support, stay with them if it is safe, and follow your "
    "service's emergency or risk procedure.\n\n"
    "This assistant summarises research on supporting peer workers. It cannot give clinical or crisis "
    "advice, so it has not searched the evidence for this message."
)

_SELF = [
    r"\bkill(ing)? my ?self\b", r"\bend(ing)? (it all|my (own )?life|things)\b", r"\btake my (own )?life\b",
    r"\b(i'?m|i am|i feel|i'?ve been|i have been|i keep|i'?m feeling|i am feeling|i get|i was) (so |really |very |quite )?"
    r"(suicidal|thinking (about|of) (suicide|killing|ending|dying|hurting))",
    r"\bi (want|wanna|wish|need|plan|intend|am going|'?m going) (to )?(die|be dead|disappear|not (be|exist|wake))",
    r"\bi wish i (was|were) dead\b", r"\bbetter off (dead|without me)\b", r"\b(hurt|harm|cut|burn)(ing)? my ?self\b",
    r"\bi (don'?t|do not) want to (live|be alive|be here|exist|wake up|go on)\b",
    r"\b(no|not any|isn'?t any) (reason|point) (to|in) (live|living|going on|being alive)\b",
    r"\bwhat'?s the point (of|in) (living|going on|being alive)\b",
    r"\bcan'?t (think of|find|see) (a|any|one) (reason|point) to\b",
    r"\bi can'?t (go on|take (it|this|any ?more)|cope any ?more|keep going|do this any ?more)\b",
    r"\b(my )?(suicide|goodbye) (note|letter)\b", r"\bi (took|have taken|'?ve taken|swallowed) (an overdose|too many|all (my|the))\b",
    r"\bi won'?t be (around|here) (much longer|any ?more|tomorrow)\b", r"\bno way out\b",
    r"\bi'?m (a burden|done with (life|everything)|not safe)\b", r"\bself[- ]?harm(ing|ed)? again\b",
    r"\bi (want|wanna|'?m going|am going|plan|need|intend) to (end it|jump|hang|overdose|disappear for ever)\b",
    r"\b(given|giving|gave) (away )?(all )?my (things|stuff|belongings|possessions)( away)?\b",
    r"\b(written|wrote|writing) (goodbye )?(letters|notes) to (my|everyone)\b", r"\bsaying goodbye to (everyone|my)\b",
    r"\bi('?ve| have)? (started|been) (self[- ]?harming|cutting)\b",
    r"\b(stockpil|hoard|sav)\w* (up )?(my |all my )?(meds|medication|pills|tablets)\b",
    r"\b(notice|care|miss me) if i (was|were|'?m) (gone|dead|not here)\b", r"\bif i (was|were)n'?t (here|around)\b",
    r"\bhow many\b.{0,40}\b(tablets|pills|paracetamol|meds|capsules)\b.{0,40}\b(take|kill|die|wake|overdose|fatal|lethal)",
    r"\b(lethal|fatal) (dose|amount)\b", r"\bi (don'?t|do not|won'?t) (want to )?wake up\b",
    r"\bbetter off if i (just )?(wasn'?t|weren'?t|was not|were not|am not|wasnt) (around|here|alive|in the picture)\b",
    r"\b(can'?t|cannot|don'?t|do not|no longer) see (the|any|a) (point|reason) (of|in|to|for) "
    r"(going on|carrying on|keep going|living|life|being here|anything|it all|go on|stay)\b",
    r"\b(quickest|easiest|fastest|painless|least painful|best|surest|simplest) (\w+ )?(way|method)s? to "
    r"(end it|end my life|die|kill (my|your)self|go to sleep forever|not wake up)\b",
    r"\bi'?m (so )?done with (life|everything|all of it|it all|living)\b",
    r"\b(i'?ve|i have) (decided|made up my mind)\b.{0,40}\b(end|tonight|goodbye|it'?s time)\b",
    r"\b(i'?ve|i have) made (my )?peace\b", r"\b(i'?ve|i have) said (all )?my goodbyes\b",
    r"\b(tell|say to) .{1,40} (i|that i) (love|loved)\b", r"\bwon'?t be needing (it|them|my|the|any|anything)\b",
    r"\bhow (long|many|much)(?! (people|staff|workers|services|deaths|suicides))\b.{0,50}\b(die|dead|bleed out|not wake|never wake|be fatal|kill (me|myself|you|someone)|"
    r"overdose|stop (my|your|the) heart)\b",
    r"\b(most |least )?(painless|quick|quickest|easy|easiest|sure|surest|certain) way (to go|out|to die|to end)\b",
    r"\b(high|far|deep|strong) enough to (die|kill|definitely die|not survive)\b", r"\bbleed(ing)? out\b",
    r"\bnoose\b", r"\btoxic gas\b", r"\b(want|wanted) it (all )?to be over\b",
    r"\bstop(ped)? taking (my|his|her) (insulin|meds|medication|tablets) (on purpose|deliberately)\b",
    r"\b(go to sleep|sleep) and (never|not) wake up\b", r"\bsee you on the other side\b", r"\bbefore i go\b",
    r"\b(he|she|they)('ll| will|'s going to| is going to| are going to) kill (me|us)\b",
    r"\b(set fire to|burn down)\b", r"\bbring(ing)? (a|his|her|their) (knife|gun|weapon)\b",
    r"\b(drive|driving|walk|jump|throw myself|step|run) (my car )?(into|in front of|off|from) (the |a |an )?"
    r"(river|sea|ocean|lake|traffic|train|bridge|cliff|motorway|highway|building|roof|tree|wall)\b",
]

_DANGER = [
    r"\b(has|have|got|holding|carrying|with) an? (gun|knife|weapon|blade|rope)\b",
    r"\b(showed|shown|pulled|pulled out|waving|brandishing) (us |me |them )?(a|the|his|her|their) (knife|gun|blade|weapon)\b",
    r"\bthreat(en|ening|ened)s? to (kill|hurt|stab|shoot|harm|attack|jump)\b", r"\bin (immediate )?danger\b",
    r"\b(going to|gonna|'?ll|will|wants? to) (stab|shoot|strangle|attack|kill|hurt|beat up) "
    r"(him|her|them|someone|somebody|his|her|their|my|the|a|you|staff|us)\b",
    r"\b(being|been) (attacked|assaulted|hurt)\b", r"\bnot breathing\b", r"\b(is|was|found) unconscious\b",
    r"\b(took|has taken|'?s taken|swallowed|downed) (an overdose|too many|a handful of|all (his|her|their|the)|"
    r"(a |an )?(whole |entire |full )?(packet|bottle|box|strip|load|lot)s? of)",
    r"\bswallowed\b.{0,30}\b(pills|tablets|paracetamol|meds|medication|bleach|capsules)\b",
    r"\b(take|took|taking|swallow\w*) (all|a whole|the whole|an entire) (of )?(my |the |a )?(box|bottle|packet|pack|strip|"
    r"supply|stash)\b", r"\b(a lot of|so much|heavy|heavily|losing) blood\b|\bbleeding (heavily|badly|a lot)\b",
    r"\b(took|taken|swallowed|had|downed) (about |around |like |over |nearly |maybe )?\d{2,3} (of )?"
    r"(my |his |her |their |the )?(\w+ )?(pills|tablets|meds|capsules|paracetamol|lithium|sertraline|"
    r"antidepressants|sleeping pills|painkillers)\b",
    r"\b(on|standing on|at|up on|climbed onto) (the|a) (ledge|bridge|roof|edge|cliff|railing)s?\b",
    r"\bcall (an )?ambulance\b", r"\bligature\b", r"\bstep (out )?in front of (a|the|next|an)\b",
    r"\bjump (off|from|in front)\b",
]

# Risk language about someone (direct or indirect). Routed unless it is framed as a policy question.
_RISK_TERM = (
    r"(suicid\w*|kill(ing)? (him|her|them)sel(f|ves)|end(ing)? (his|her|their) (own )?life|take (his|her|their) (own )?life|"
    r"self[- ]?harm\w*|(hurt|harm|cut|burn)(ing|s)? (him|her|them)sel(f|ves)|overdos\w*|want(s|ed)? to die|"
    r"(going to|gonna|'?ll|will|wants? to|plans? to|planning to) end (it|things|everything)\b|"
    r"better off without (him|her|them)|giving away (his|her|their) (things|belongings|stuff|possessions)|"
    r"saying goodbye|said goodbye to (everyone|everybody|us all|the team)|(left|wrote|written) a (suicide |goodbye )?note|"
    r"goodbye (message|text|post|email|video)|farewell (message|text|note)|sorry for everything|"
    r"look after .{1,25} for me|"
    r"(gave|given|giving) (away )?(all )?(his|her|their) (things|belongings|stuff|possessions)|no way out|"
    r"can'?t go on|hang(ing)? (him|her|them)sel(f|ves)|(cutting|self[- ]?harming|harming) again|"
    r"(suicide|goodbye) (note|letter)|not (want|wanting) to (live|be alive|be here|go on)|"
    r"going to be with (my |her |his |their )?(late )?(mum|mom|mother|dad|father|husband|wife|partner|son|daughter|"
    r"brother|sister|nan|gran|grandma|grandad|grandpa|friend) (now|soon|tonight)|"
    r"not (being|be) (here|around|alive) any ?more)"
)
_RISK_RE = re.compile(rf"\b{_RISK_TERM}", re.IGNORECASE)
# A worrying message followed by silence ("texted 'thank you for everything' and isn't answering").
_UNREACHABLE = re.compile(r"\b(isn'?t|is not|not|nobody|no one|noone|can'?t|cannot|couldn'?t|hasn'?t been) "
                          r"(answering|picking up|responding|replying|reach(ed)?|get hold of|contact(ed)?|seen)\b|"
                          r"\bhas(n'?t| not) (turned up|come in|shown up|been seen)\b|\b(gone )?missing\b",
                          re.IGNORECASE)
_FAREWELL = re.compile(r"\b(thank you for everything|thanks for everything|sorry for everything|i'?m sorry|goodbye|"
                       r"good bye|farewell|love you all|look after|take care of (the|my|everyone)|be with .{1,20} now|"
                       r"last (message|text|post)|this is it|won'?t be (around|back|here))\b", re.IGNORECASE)
_RISK_NOW = re.compile(rf"\b{_RISK_TERM}.{{0,60}}\b(right now|tonight|at the moment|as we speak|"
                       r"this (morning|afternoon|evening)|just now|last night|immediately)\b|"
                       rf"\b(right now|tonight|just now|at the moment|as we speak)\b.{{0,60}}{_RISK_TERM}", re.IGNORECASE)
# Signs that something is happening to a real person, not a policy scenario.
_SPECIFIC = re.compile(
    r"\b(right now|tonight|at the moment|as we speak|this (morning|afternoon|evening)|last night|"
    r"told me|tells me|texted|emailed me|messaged me|rang|phoned|called me|called us|posted|keeps|kept|"
    r"keep (saying|talking|texting|telling|mentioning|threatening)|"
    r"has been|have been|is being|saying|said|says|wrote|left a|just (told|said|texted|rang|called|tried|took|swallowed|posted|disclosed|cut|"
    r"attempted|sent|left|wrote)|isn'?t answering|not answering|missing|hasn'?t (turned up|come in|replied))\b",
    re.IGNORECASE)
_PRESENT_STATE = re.compile(
    r"\b(is|are|'s|'re|am|'m|seems?|seemed|has been|have been|keeps?|kept|getting|started|currently|now)\b"
    r"( \w+){0,3} (suicidal|self[- ]?harming|cutting|overdosing|talking about (suicide|killing|ending|dying)|"
    r"threatening (suicide|to))\b", re.IGNORECASE)
_HYPOTHETICAL_OR_PAST = re.compile(
    r"\b(hypothetic\w*|role ?play\w*|scenario|what if|what would|if (a|an|our|my|someone|somebody|they|he|she|"
    r"the|one)|in case|whenever|years ago|in the past|history of|used to|previously|past (attempt|suicid|self)|"
    r"lived experience of|recovered|policy|policies|procedure|protocol|guideline|training|session|induction|"
    r"course|module|statistic|how many people|rates?|evidence|research|stud(y|ies)|literature|"
    r"after (a|an|the) (death|incident|suicide|loss|attempt|event|serious)|"
    r"incident review|the review|at (high |higher |increased )?risk of|risk assessments?)\b",
    re.IGNORECASE)


_SELF_RE = re.compile("|".join(_SELF), re.IGNORECASE)
_DANGER_RE = re.compile("|".join(_DANGER), re.IGNORECASE)

@dataclass(frozen=True)
class SafetyVerdict:
    crisis: bool
    reason: str = ""


def check_crisis(question: str) -> SafetyVerdict:
    """Crisis language about the asker, a colleague or a service user, direct or indirect."""
    text = normalise(question).lower()
    m = _SELF_RE.search(text)
    if m:
        return SafetyVerdict(True, f"self: {m.group(0)}")
    m = _DANGER_RE.search(text)
    if m:
        return SafetyVerdict(True, f"danger: {m.group(0)}")
    m = _RISK_NOW.search(text)
    if m:
        return SafetyVerdict(True, f"risk now: {m.group(0)}")
    if _UNREACHABLE.search(text) and _FAREWELL.search(text):
        return SafetyVerdict(True, "worrying message, then unreachable")
    m = _RISK_RE.search(text)
    if m:
        # A risk word alone is a topic ("How many people die by suicide each year?", "our self-harm
        # policy"). It is routed when something says it is happening to someone now, unless the
        # question is framed as hypothetical or about the past.
        framed = _HYPOTHETICAL_OR_PAST.search(text)
        if (_SPECIFIC.search(text) or _PRESENT_STATE.search(text)) and not framed:
            return SafetyVerdict(True, f"risk: {m.group(0)[:80]}")
        return SafetyVerdict(False, "risk mentioned as a topic")
    return SafetyVerdict(False)


class SemanticCrisisCheck:
    """A logistic-regression classifier over the question's embedding (``assistant/crisis_model.json``,
    trained by ``python -m evals.train_crisis`` on written examples and labelled questions).

    It runs after the rules and only adds routings, never removes them. It is used only with the
    embedding model it was trained for; with another model the rules work alone (and a warning says so).
    """

    def __init__(self, embedder: Any, model_file: Path | None = None, threshold: float | None = None) -> None:
        self.embedder = embedder
        self.model_file = model_file or Path(__file__).with_name("crisis_model.json")
        self.threshold = threshold
        self._model: tuple[Any, float, float] | None = None
        self.enabled = True

    def _load(self) -> tuple[Any, float, float] | None:
        if self._model is None and self.enabled:
            import json

            import numpy as np

            data = json.loads(self.model_file.read_text(encoding="utf-8"))
            if data.get("embedding_model") != getattr(self.embedder, "name", None):
                log.warning("crisis classifier was trained for %s, not %s: using the crisis rules only",
                            data.get("embedding_model"), getattr(self.embedder, "name", None))
                self.enabled = False
                return None
            threshold = self.threshold if self.threshold is not None else float(data["threshold"])
            self._model = (np.asarray(data["weights"], dtype="float64"), float(data["bias"]), threshold)
        return self._model

    def probability(self, vector: Sequence[float]) -> float | None:
        import numpy as np

        model = self._load()
        if model is None:
            return None
        weights, bias, _ = model
        z = float(weights @ np.asarray(vector, dtype="float64")) + bias
        return 1.0 / (1.0 + math.exp(-max(min(z, 50.0), -50.0)))

    def check(self, vector: Sequence[float]) -> SafetyVerdict:
        p = self.probability(vector)
        if p is not None and self._model is not None and p >= self._model[2]:
            return SafetyVerdict(True, f"classifier: p={p:.2f}")
        return SafetyVerdict(False)
