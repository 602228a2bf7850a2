"""Search: ranking, diversity, filters, quotes, refusal."""

from __future__ import annotations

from datetime import date

from index import IndexCore, SearchFilters
from tests.factories import article


def _three_topics(core: IndexCore) -> None:
    core.add_articles(
        [
            article("volcano", outlet="Daily Test", published=date(2024, 1, 10)),
            article("football", outlet="Sports Wire", published=date(2024, 3, 5)),
            article("bank", outlet="Money Times", published=date(2024, 6, 1)),
        ]
    )


def test_best_passage_comes_first_with_source_and_quote(core: IndexCore) -> None:
    _three_topics(core)
    [top, *_] = core.search("Did the goalkeeper save penalties in the shootout?").hits
    assert top.title == "Cup final won on penalties"
    assert (top.outlet, top.author, top.published) == ("Sports Wire", "A. Writer", date(2024, 3, 5))
    assert "goalkeeper saved two penalties" in top.quote
    start, end = top.quote_span
    assert top.passage[start:end] == top.quote


def test_quote_is_one_to_three_whole_sentences(core: IndexCore) -> None:
    sentences = [f"Sentence number {i} talks about topic {i}." for i in range(12)]
    core.add_articles([article("volcano", text=" ".join(sentences))])
    hit = core.search("topic 7").hits[0]
    assert "topic 7." in hit.quote
    assert 1 <= hit.quote.count("Sentence number") <= 3
    assert hit.quote.startswith("Sentence") and hit.quote.endswith(".")


def test_one_article_contributes_two_passages_before_others_get_their_turn(
    core: IndexCore,
) -> None:
    text = "\n\n".join(
        f"The volcano erupted again, episode {i}. Ash fell on the village." * 8 for i in range(6)
    )
    core.add_articles([article("volcano", text=text), article("bank")])
    core.min_hit_share = 0.0  # keep weak hits: ordering is tested
    hits = core.search("volcano erupted ash village", k=5).hits
    volcano = [hit.title.startswith("Volcano") for hit in hits]
    assert volcano[:2] == [True, True] and volcano[2] is False
    assert all(volcano[3:])  # then the capped article's further passages


def test_a_single_article_corpus_still_offers_all_its_passages(core: IndexCore) -> None:
    text = "\n\n".join(
        f"Paragraph {i}: the volcano erupted and ash fell on the village. " * 6 for i in range(5)
    )
    core.add_articles([article("volcano", text=text)])
    first = core.search("volcano ash village", k=3)
    assert len(first.hits) == 3 and first.has_more
    rest = core.search("volcano ash village", k=3, offset=3)
    assert rest.hits and not {h.passage_id for h in first.hits} & {h.passage_id for h in rest.hits}


def test_weak_trailing_hits_are_left_out(core: IndexCore) -> None:
    _three_topics(core)
    hits = core.search("goalkeeper saved penalties shootout", k=3).hits
    assert [hit.title for hit in hits] == ["Cup final won on penalties"]


def test_outlet_and_date_filters(core: IndexCore) -> None:
    _three_topics(core)
    question = "news about the village, the cup and interest rates"
    only_money = core.search(question, k=5, filters=SearchFilters(outlets=("money times",)))
    assert {hit.outlet for hit in only_money.hits} == {"Money Times"}
    spring = core.search(
        question, k=5, filters=SearchFilters(since=date(2024, 2, 1), until=date(2024, 4, 1))
    )
    assert {hit.published for hit in spring.hits} == {date(2024, 3, 5)}
    nothing = core.search(question, filters=SearchFilters(outlets=("Nobody",)))
    assert nothing.refused and nothing.hits == []


def test_recent_articles_rank_higher_when_the_question_asks_for_news(core: IndexCore) -> None:
    core.add_articles(
        [
            article("bank", published=date(2020, 1, 1), url="https://x.example/old"),
            article("bank", published=date.today(), url="https://x.example/new"),
        ]
    )
    plain = core.search("central bank interest rates", k=2).hits
    assert {hit.url for hit in plain} == {"https://x.example/old", "https://x.example/new"}
    latest = core.search("latest news on central bank interest rates", k=2).hits
    assert latest[0].url == "https://x.example/new"
    assert latest[0].score > latest[1].score


def test_paging_continues_where_the_first_page_ended(core: IndexCore) -> None:
    _three_topics(core)
    core.min_hit_share = 0.0  # keep weak hits: paging is tested
    first = core.search("volcano cup bank village", k=2)
    second = core.search("volcano cup bank village", k=2, offset=2)
    assert first.has_more
    assert not {h.passage_id for h in first.hits} & {h.passage_id for h in second.hits}


def test_unrelated_question_is_refused(core: IndexCore) -> None:
    _three_topics(core)
    result = core.search("quantum chromodynamics lattice gauge symmetry")
    assert result.refused and result.hits == []


def test_empty_index_and_empty_question_answer_cleanly(core: IndexCore) -> None:
    assert core.search("anything at all").refused
    _three_topics(core)
    assert core.search("   ").refused
    assert core.search("???").refused  # no words, nothing relevant
