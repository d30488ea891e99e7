"""Guards on the evidence corpus itself: valid, complete, traceable, honest."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from urllib.parse import unquote, urlparse

import pytest

from assistant.settings import PROJECT_ROOT
from ingest.cards import Corpus, load_corpus

# Canonical sources (see docs/CARD_GUIDE.md, "Sources"). A card with a DOI needs a source that is the DOI
# resolver or a publisher page for that DOI (the DOI in its address), or its PubMed/PMC record. A card without
# a DOI (grey literature, guidance) needs its `url` among its sources, on the own site of the organisation that
# published it: the site must be listed in PUBLISHER_SITES, and that organisation must be named in the card's
# authors or venue. Aggregators, mirrors and document-sharing sites are never canonical.
AGGREGATORS = ("ouci.dntb.gov.ua", "discovery.researcher.life", "researcher.life", "scite.ai", "concepedia.online",
               "rrel.info", "bettercareplaybook.org", "booksci.cn", "medworm.com", "psychosocial.com",
               "springermedicine.com", "springermedizin.de", "growkudos.com", "researchgate.net", "academia.edu",
               "semanticscholar.org", "vdocuments", "fdocuments", "readkong.com", "docksci.com", "scribd.com",
               "dokumen.tips", "pdfslide", "yumpu.com", "docplayer", "globalauthorid.com", "bohrium.dp.tech",
               "docslib.org", "doclinks.org", "zbook.org", "mentalhealthtips.xyz", "cord.distantreader.org")
DOI_HOSTS = ("doi.org", "dx.doi.org")
PUBMED_HOSTS = ("pubmed.ncbi.nlm.nih.gov", "pmc.ncbi.nlm.nih.gov", "www.ncbi.nlm.nih.gov", "ncbi.nlm.nih.gov")
PUBLISHER_SITES = {  # host (or parent domain) -> the organisation whose own site it is
    "qmhc.qld.gov.au": "Queensland Mental Health Commission",
    "acquire.cqu.edu.au": "Central Queensland University",
    "mentalhealthaustralia.org.au": "Mental Health Australia",
    "scotland.gov.uk": "Scottish Government",
    "gov.scot": "Scottish Government",
    "imroc.org": "ImROC",
    "hee.nhs.uk": "Health Education England",
    "mentalhealthcommission.gov.au": "National Mental Health Commission",
    "mentalhealthcommission.ca": "Mental Health Commission of Canada",
    "peerworkhub.com.au": "Mental Health Commission of New South Wales",
    "nswmentalhealthcommission.com.au": "Mental Health Commission of New South Wales",
    "health.nsw.gov.au": "NSW Health",
    "samhsa.gov": "Substance Abuse and Mental Health Services Administration",
    "mirecc.va.gov": "Department of Veterans Affairs",
    "socialworktoday.com": "Social Work Today",
    "pscportal.ca": "Peer Support Canada",
    "peersupportcanada.ca": "Peer Support Canada",
}
# Cards whose only source is known to be non-canonical; each must say "unverified" in its Summary.
UNVERIFIED_SOURCE = {"mahon-2023"}


def _host(url: str) -> str:
    return urlparse(url).netloc.lower().split("@")[-1].split(":")[0]


def _on(host: str, domain: str) -> bool:
    return host == domain or host.endswith("." + domain)


def is_aggregator(url: str) -> bool:
    host = _host(url)
    return any(a in host for a in AGGREGATORS)


def canonical_sources(card) -> list[str]:
    """The sources that count as canonical for this card under the rule above."""
    found = []
    for src in card.sources:
        host = _host(src)
        if is_aggregator(src):
            continue
        if card.doi:
            path = unquote(unquote(urlparse(src).path)).lower()
            if any(_on(host, h) for h in DOI_HOSTS) and path.strip("/") == card.doi.lower():
                found.append(src)
            elif card.doi.lower() in path:
                found.append(src)
            elif any(_on(host, h) for h in PUBMED_HOSTS):
                found.append(src)
        elif card.url and src.rstrip("/") == card.url.rstrip("/"):
            org = next((o for d, o in PUBLISHER_SITES.items() if _on(host, d)), None)
            named = " ".join((card.venue, *card.authors)).lower()
            if org and org.lower() in named:
                found.append(src)
    return found


@pytest.fixture(scope="module")
def corpus() -> Corpus:
    return load_corpus(PROJECT_ROOT / "corpus")


def test_counts_by_kind(corpus: Corpus) -> None:
    kinds = defaultdict(int)
    for card in corpus.cards:
        kinds[card.kind] += 1
    assert kinds["review"] == 1
    assert kinds["study"] >= 28
    assert kinds["related-review"] + kinds["related-study"] >= 6
    assert kinds["guidance"] >= 10


def test_guidance_cards_are_described_as_guidance(corpus: Corpus) -> None:
    for card in corpus.cards:
        if card.kind == "guidance":
            assert card.url and card.document_type, card.id
            assert card.design.lower().startswith("guidance"), card.id
            assert card.review_inclusion == "n/a", card.id
            assert card.url in card.sources, card.id


def test_the_review_card(corpus: Corpus) -> None:
    review = corpus.by_id()["zeng-2021"]
    assert review.kind == "review" and review.doi == "10.1007/s10488-021-01118-6"
    text = review.full_text()
    assert "28" in text and "25" in text and "3" in text
    caveats = next(s.text for s in review.sections if s.name == "caveats").lower()
    assert "only the abstract" in caveats and "reference list" in caveats
    assert {s.theme for s in review.sections if s.theme} == set(corpus.taxonomy.themes)
    # The abstract names themes, not strategies: the review is tagged at theme level only.
    assert all(s.strategy is None for s in review.sections if s.name == "strategy")


def test_ids_and_dois_are_unique(corpus: Corpus) -> None:
    ids = [c.id for c in corpus.cards]
    dois = [c.doi.lower() for c in corpus.cards if c.doi]
    assert len(ids) == len(set(ids))
    assert len(dois) == len(set(dois))


def test_every_theme_has_strategies_from_at_least_four_studies(corpus: Corpus) -> None:
    studies_by_theme: dict[str, set[str]] = defaultdict(set)
    for card in corpus.cards:
        if card.kind == "study":
            for s in card.sections:
                if s.theme:
                    studies_by_theme[s.theme].add(card.id)
    for theme in corpus.taxonomy.themes:
        assert len(studies_by_theme[theme]) >= 4, theme


def test_every_taxonomy_strategy_is_used(corpus: Corpus) -> None:
    used = {(s.theme, s.strategy) for c in corpus.cards for s in c.sections if s.theme and s.strategy}
    declared = {(t.id, s) for t in corpus.taxonomy.themes.values() for s in t.strategies}
    assert declared - used == set()


def test_every_card_has_a_canonical_source(corpus: Corpus) -> None:
    for card in corpus.cards:
        if card.id in UNVERIFIED_SOURCE:
            summary = next(s.text for s in card.sections if s.name == "summary").lower()
            assert "unverified" in summary, (card.id, "say in the Summary that the source is unverified")
            continue
        assert canonical_sources(card), (card.id, card.doi, card.sources)


@pytest.mark.parametrize("card_id, doi, url, venue, sources, ok", [
    # the old hurley-2016: a journal article cited from a summary page and a page for another paper
    ("hurley-2016", None, "https://mentalhealthaustralia.org.au/key-issues/", "International Journal of Mental Health Nursing",
     ["https://mentalhealthaustralia.org.au/key-issues/",
      "https://www.cambridge.org/core/journals/epidemiology-and-psychiatric-sciences/article/other-paper/BB36"], False),
    # the old mahon-2023: only a citation aggregator
    ("mahon-2023", None, "https://ouci.dntb.gov.ua/works/7pvA61al", "Mental Health and Social Inclusion",
     ["https://ouci.dntb.gov.ua/works/7pvA61al"], False),
    ("x-2007", "10.1007/s10488-006-0109-4", None, "Journal", ["https://doi.org/10.1007/s10488-006-0109-4"], True),
    ("x-2007", "10.1007/s10488-006-0109-4", None, "Journal", ["https://link.springer.com/doi/10.1007/s10488-006-0109-4"], True),
    ("x-2007", "10.1007/s10488-006-0109-4", None, "Journal", ["https://link.springer.com/article/10.1007/s10488-099-0000-0"], False),
    ("x-2007", "10.1007/s10488-006-0109-4", None, "Journal", ["https://growkudos.com/publications/10.1007%252Fs10488-006-0109-4"], False),
    ("x-2012", "10.1007/s10597-012-9519-9", None, "Journal", ["https://pubmed.ncbi.nlm.nih.gov/22806435/"], True),
    ("imroc-2013", None, "https://imroc.org/resource/peer-support-workers/", "ImROC briefing", ["https://imroc.org/resource/peer-support-workers/"], True),
])
def test_canonical_rule_examples(card_id, doi, url, venue, sources, ok) -> None:
    from types import SimpleNamespace
    card = SimpleNamespace(id=card_id, doi=doi, url=url, venue=venue, authors=("Someone, A.",), sources=tuple(sources))
    assert bool(canonical_sources(card)) is ok


def test_studies_are_never_marked_confirmed(corpus: Corpus) -> None:
    # Nobody has the review's reference list, so no study can be confirmed as included.
    for card in corpus.cards:
        if card.kind == "study":
            assert card.review_inclusion in {"probable", "possible"}, card.id
        else:
            assert card.review_inclusion == "n/a", card.id


def test_every_card_says_what_is_uncertain(corpus: Corpus) -> None:
    for card in corpus.cards:
        assert any(s.name == "caveats" for s in card.sections), card.id


def _ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    words = re.findall(r"[a-z]+", text.lower())  # numbers and statistics are facts, not prose
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_cards_do_not_copy_long_passages_from_the_dossier(corpus: Corpus) -> None:
    """Own words: no run of 16 words shared with the research dossier (titles excepted)."""
    dossier = PROJECT_ROOT.parent / "shared" / "research" / "dossier.md"
    if not dossier.exists():
        pytest.skip("shared/research/dossier.md is not beside the checkout")
    n = 16
    source = _ngrams(dossier.read_text(encoding="utf-8"), n)
    for card in corpus.cards:
        shared = _ngrams(card.full_text(), n) & source
        title = _ngrams(card.title, n)
        assert not (shared - title), (card.id, [" ".join(g) for g in list(shared - title)[:2]])


SHINGLE_DIR = PROJECT_ROOT / "corpus" / "source_shingles"


def _shingle_hashes(text: str, n: int = 10) -> set[str]:
    """Same hashing as corpus/tools/shingle.py: sha256 (first 16 hex) of each n-word window."""
    words = re.findall(r"[a-z]+", text.lower())
    return {hashlib.sha256(" ".join(words[i:i + n]).encode("utf-8")).hexdigest()[:16]
            for i in range(len(words) - n + 1)}


def test_shingle_files_belong_to_cards(corpus: Corpus) -> None:
    ids = set(corpus.by_id())
    for path in SHINGLE_DIR.glob("*.txt"):
        assert path.stem in ids, f"{path.name}: no card with that id"
        lines = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        assert lines and all(re.fullmatch(r"[0-9a-f]{16,64}", ln) for ln in lines), path.name


def test_every_guidance_card_has_source_shingles(corpus: Corpus) -> None:
    for card in corpus.cards:
        if card.kind == "guidance":
            assert (SHINGLE_DIR / f"{card.id}.txt").exists(), f"run corpus/tools/shingle.py for {card.id}"


def test_cards_do_not_copy_ten_word_runs_from_their_sources(corpus: Corpus) -> None:
    """Own words: no 10-word window of a card matches one of the source texts its author read."""
    source: dict[str, set[str]] = {}
    for path in SHINGLE_DIR.glob("*.txt"):
        source[path.stem] = {ln.strip()[:16] for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()}
    everything = set().union(*source.values()) if source else set()
    for card in corpus.cards:
        text = "\n".join([card.full_text(), card.setting, card.design, card.participants or ""])
        shared = (_shingle_hashes(text) & everything) - _shingle_hashes(card.title)
        assert not shared, (card.id, f"{len(shared)} ten-word runs match a source text; rephrase them "
                                     "(python corpus/tools/shingle.py can show none; see docs/CARD_GUIDE.md)")


def test_known_gaps_list(corpus: Corpus) -> None:
    from ingest.cards import safe_yaml
    data = safe_yaml((PROJECT_ROOT / "corpus" / "known_gaps.yaml").read_text(encoding="utf-8"))
    gaps = data["gaps"]
    ids = [g["id"] for g in gaps]
    assert len(ids) == len(set(ids)), "gap ids must be unique"
    card_ids = set(corpus.by_id())
    for g in gaps:
        assert re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", g["id"]), g["id"]
        assert isinstance(g["topic"], str) and g["topic"].strip(), g["id"]
        assert g["terms"] and all(isinstance(x, str) and x == x.lower() and x.strip() for x in g["terms"]), g["id"]
        assert isinstance(g["instead"], str) and g["instead"][:1].islower() and not g["instead"].endswith("."), g["id"]
        assert set(g.get("partly_covered_by") or []) <= card_ids, g["id"]


def test_refusal_examples() -> None:
    """corpus/refusals.yaml trains the semantic refusal check: its categories are the vocabulary's
    refusal ids, each has enough examples, and no text is both refused and allowed."""
    from ingest.cards import safe_yaml
    from ingest.vocabulary import VOCABULARY_FILE, load_vocabulary

    data = safe_yaml((PROJECT_ROOT / "corpus" / "refusals.yaml").read_text(encoding="utf-8"))
    ids = {o.id for o in load_vocabulary(PROJECT_ROOT / "corpus" / VOCABULARY_FILE).scope.out_of_scope if o.id}
    assert set(data["refuse"]) == ids
    refused = [t for examples in data["refuse"].values() for t in examples]
    assert all(len(examples) >= 20 for examples in data["refuse"].values())
    assert len(data["allow"]) >= len(refused) // 2
    texts = [*refused, *data["allow"]]
    assert all(isinstance(t, str) and t.strip() for t in texts)
    assert len({t.lower() for t in texts}) == len(texts), "duplicate example"
