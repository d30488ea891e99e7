"""The safety gate, checked before retrieval: crisis language is routed to help; clearly
out-of-scope requests (clinical advice, code, poems...) abstain.

Crisis detection is deliberately rule-based and errs towards routing: a missed crisis is far
worse than a manager seeing a crisis message for an ambiguous question. Questions that mention
suicide or self-harm only as a policy, training or evidence topic are not routed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

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
    r"\b(i'?m|i am|i feel|i'?ve been|i have been|i keep|feeling|i get|i was) (so |really |very |quite )?(suicidal|thinking (about|of) (suicide|killing|ending|dying|hurting))",
    r"\bi (want|wanna|wish|need|plan|intend|am going|'?m going) (to )?(die|be dead|disappear|not (be|exist|wake))",
    r"\bi wish i (was|were) dead\b", r"\bbetter off (dead|without me)\b", r"\b(hurt|harm|cut|burn)(ing)? my ?self\b",
    r"\bi (don'?t|do not) want to (live|be alive|be here|exist|wake up|go on)\b",
    r"\b(no|not any|isn'?t any) (reason|point) (to|in) (live|living|going on|being alive)\b",
    r"\bwhat'?s the point (of|in) (living|going on|being alive)\b",
    r"\bi can'?t (go on|take (it|this|any ?more)|cope any ?more|keep going|do this any ?more)\b",
    r"\b(my )?(suicide|goodbye) (note|letter)\b", r"\bi (took|have taken|'?ve taken|swallowed) (an overdose|too many|all (my|the))\b",
    r"\bi won'?t be (around|here) (much longer|any ?more|tomorrow)\b", r"\bno way out\b",
    r"\bi'?m (a burden|done with (life|everything)|not safe)\b", r"\bself[- ]?harm(ing|ed)? again\b",
    r"\bi('?ve| have)? (started|been) (self[- ]?harming|cutting)\b",
]

_DANGER = [
    r"\b(has|have|got|holding|carrying|with) an? (gun|knife|weapon|blade|rope)\b",
    r"\bthreat(en|ening|ened)s? to (kill|hurt|stab|shoot|harm|attack|jump)\b", r"\bin (immediate )?danger\b",
    r"\b(being|been) (attacked|assaulted|hurt)\b", r"\bnot breathing\b", r"\b(is|was|found) unconscious\b",
    r"\b(took|has taken|'?s taken|swallowed) (an overdose|too many|a handful of|all (his|her|their|the))",
    r"\b(on|standing on|at) (the|a) (ledge|bridge|roof|edge)\b", r"\bcall (an )?ambulance\b",
]

# Something about a specific person that signals risk now (direct or indirect).
_RISK_TERM = (
    r"(suicid\w*|kill(ing)? (him|her|them)sel(f|ves)|end(ing)? (his|her|their) (own )?life|take (his|her|their) (own )?life|"
    r"self[- ]?harm\w*|(hurt|harm|cut|burn)(ing|s)? (him|her|them)sel(f|ves)|overdos\w*|want(s|ed)? to die|"
    r"better off without (him|her|them)|giving away (his|her|their) (things|belongings|stuff|possessions)|"
    r"saying goodbye|no way out|can'?t go on|hang(ing)? (him|her|them)sel(f|ves)|jump(ing)? off|"
    r"(suicide|goodbye) (note|letter)|not (want|wanting) to (live|be alive|be here|go on))"
)
_PERSON = (r"(he|she|they|someone|somebody|a (client|service user|peer worker|peer|colleague|staff member|worker|"
           r"patient|person|member of staff|resident|young person|consumer)|one of (my|our) \w+( \w+)?|"
           r"my (colleague|peer worker|client|son|daughter|friend|partner|brother|sister|mum|mom|dad|coworker|co-worker|"
           r"team ?mate|staff member)|our (peer worker|client|colleague))")
_EVENT = (r"(is|are|was|were|'s|'re|has|have|had|just|keeps?|kept|said|says|told|tells|texted|emailed|posted|"
          r"messaged|threaten\w*|mention\w*|talk\w*|disclos\w*|tried|attempt\w*|seems|seem|sounded|sounds|"
          r"wrote|left|went|been|appears?)")
_OTHER = re.compile(rf"\b{_PERSON}\b.{{0,80}}\b{_EVENT}\b.{{0,80}}\b{_RISK_TERM}", re.IGNORECASE)
_RISK_NOW = re.compile(rf"\b{_RISK_TERM}.{{0,60}}\b(right now|tonight|today|at the moment|currently|as we speak|"
                       r"this (morning|afternoon|evening)|just now|last night|immediately)\b|"
                       rf"\b(right now|tonight|just now|at the moment|as we speak)\b.{{0,60}}{_RISK_TERM}", re.IGNORECASE)
_IMMEDIATE = re.compile(r"\b(right now|tonight|today|just|at the moment|currently|as we speak|this (morning|afternoon|"
                        r"evening)|last night|yesterday|earlier)\b", re.IGNORECASE)
_HYPOTHETICAL = re.compile(
    r"\b(if|when|whenever|in case|what if|should|policy|policies|procedure|protocol|guideline|guidance|framework|"
    r"training|train|prevention|postvention|evidence|research|stud(y|ies)|literature|review|best practice|"
    r"approach|in general|generally|typically|how (do|should|can|could) (we|our|services|organisations|managers))\b",
    re.IGNORECASE)

_SELF_RE = re.compile("|".join(_SELF), re.IGNORECASE)
_DANGER_RE = re.compile("|".join(_DANGER), re.IGNORECASE)

_OUT_OF_SCOPE = [
    ("clinical treatment or medication advice",
     r"\b(dose|dosage|dosing|mg|milligrams?|prescrib\w*|prescription|antidepressants?|antipsychotics?|ssris?|"
     r"lithium|sertraline|fluoxetine|olanzapine|clozapine|benzodiazepines?|side[- ]effects?|"
     r"(which|what) (medication|medicine|drug|pill)s?|cure for|how (do|can|should) (i|we|you) treat|"
     r"treatment (for|of) (my |his |her |their )?(depression|anxiety|schizophrenia|psychosis|bipolar|ptsd|ocd|"
     r"eating disorder|insomnia)|(diagnose|diagnosing) (me|my|him|her|them|someone))\b"),
    ("writing code", r"\b(python|javascript|typescript|sql|regex|html|css|bash|java|c\+\+|rust|golang)\b|"
                     r"\b(write|fix|debug)\b.{0,30}\b(code(?! of)|function|algorithm)\b"),
    ("creative writing", r"\b(poem|haiku|sonnet|limerick|song|lyrics|rap|short story|fairy tale|joke|riddle)s?\b"),
    ("general knowledge outside this evidence base",
     r"\b(weather|forecast|stock price|bitcoin|football|soccer|cricket|recipe|capital of|translate|horoscope|"
     r"lottery|movie|netflix|election results?)\b"),
]
_OOS_RE = [(reason, re.compile(pattern, re.IGNORECASE)) for reason, pattern in _OUT_OF_SCOPE]


def normalise(text: str) -> str:
    """NFKC, straight apostrophes, control characters removed, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    text = "".join(ch if (ch.isprintable() or ch in "\n\t") else " " for ch in text)
    return " ".join(text.split())


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
    m = _OTHER.search(text)
    if m:
        # "What should our policy be if a peer worker discloses suicidal thoughts?" is a policy question,
        # unless something says it is happening now.
        if _HYPOTHETICAL.search(text) and not _IMMEDIATE.search(text) and not re.search(
                r"\b(told me|keeps?|kept|has been|have been|is being|just)\b", text):
            return SafetyVerdict(False, "policy context")
        return SafetyVerdict(True, f"other: {m.group(0)[:80]}")
    return SafetyVerdict(False)


def out_of_scope_reason(question: str) -> str | None:
    """A reason when the request is plainly outside an evidence base on peer-work implementation."""
    text = normalise(question)
    for reason, pattern in _OOS_RE:
        if pattern.search(text):
            return reason
    return None
