"""The fixed words of the chat page (one place, so the handlers and the layout say the same)."""

from __future__ import annotations

TITLE = "Peer Provision Assistant"
ALL_THEMES = "all"
EXAMPLE_QUESTIONS = (
    "What should we do before our first peer worker starts?",
    "Who should supervise peer workers?",
    "How can leaders show they support peer work?",
    "What training do peer workers need?",
)

INTRO = (
    f"## {TITLE}\n"
    "Evidence on introducing and supporting **peer workers** in mental health services. Ask an implementation "
    "question: the answer lists the strategies the research reports, grouped by theme, each sentence quoted from a "
    "study and marked with a citation such as [1]. The sources are listed on the right."
)
PLACEHOLDER = (
    "**Ask about introducing or supporting peer workers.**\n\n"
    "Every answer is made of sentences quoted from evidence cards, with citation markers [1], [2] that point to "
    "the sources panel. Follow-up questions keep the context of the conversation. Pick an example to start."
)
SOURCES_EMPTY = "_Sources appear here after you ask a question: each [n] in the answer points to a numbered source._"
CARD_EMPTY = "_Choose a card above to read it in full._"
CRISIS_BANNER = (
    "**Please read this first.** Your message may be about someone's safety. If anyone is in immediate danger, "
    "call your local emergency number now. Crisis lines and next steps are in the reply below."
)
FOOTER = (
    "Research summaries for service managers, not clinical or crisis advice. "
    "Answers quote the evidence cards in this assistant; check the cited studies before acting on them."
)

SEARCHING = "_Searching the evidence…_"
TOO_LONG = ("Your message is {length:,} characters long; the limit is {limit:,}. "
            "Please ask one short question at a time (no pasted documents).")
SORRY = "**Sorry, I could not answer that.** "
FAILED = ("**Sorry, something went wrong on our side** while answering. Please try again; if it keeps "
          "happening, tell the people who run this assistant.")
API_FAILED = "Something went wrong while answering; please try again."
FEEDBACK_FIRST = "_Ask a question first: feedback is about the latest answer._"
FEEDBACK_SAVED = "_Thank you: your feedback on the latest answer was saved._"
FEEDBACK_FAILED = "_Sorry, your feedback could not be saved._"
TOO_MANY = ("Too many requests from your address: please wait {seconds:.0f} s and try again "
            "(each client may make {burst} requests at once, then {per_minute:g} a minute).")
BUSY = "The assistant is busy answering other people right now: please try again in a few seconds."

MAP_INTRO = (
    "### Evidence map\n"
    "Each row is a strategy of the review's model (leadership first); each column a kind of evidence. A cell "
    "counts the evidence cards with a section on that strategy; darker means more cards, and **—** marks a gap "
    "that no card covers. Click a cell (or choose it from the list) to see its cards."
)
MAP_BY_CHOICES = (("Kind of evidence", "kind"), ("Study design", "design"), ("Country", "country"),
                  ("Year published", "year"))
MAP_CELL_EMPTY = "_Choose a cell (strategy × column) to list its cards._"
MAP_GAP = "_No card has a section on this strategy in this column: a gap in the evidence._"
MAP_ASK = "What does the evidence say about {title}?"
MAP_ASK_IDLE = "Ask the chat about this strategy (choose a cell first)"
