"""`python -m bot bench` keeps working: a tiny load through the real Dispatcher and the fake
Bot API in its own process, with the fast fake embedder."""

from __future__ import annotations

import pytest

from bot.bench import CORPUS, BenchOptions, report, run_bench
from tests.fakes import HashEmbedder

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="needs ../shared/corpus")


async def test_every_question_gets_exactly_one_reply() -> None:
    """20 users asking 2 questions each over 1,000 passages: 40 replies, none missing, none
    doubled, each an answer or a "nothing found"; the report says so."""
    options = BenchOptions(users=20, questions=2, passages=1000, articles=20, timeout=60)
    result = await run_bench(options, HashEmbedder(), {"min_relevance": 0.2, "min_hit_share": 0.0})
    assert (result.questions, result.replied, result.dropped, result.duplicates) == (40, 40, 0, 0)
    assert result.other == 0
    assert result.answered > 0
    assert result.answered + result.not_found == 40
    assert result.passages == 1000
    assert result.questions_per_s > 0
    assert 0 < result.reply_p50_ms <= result.reply_p99_ms <= result.reply_max_ms
    assert "replies          40/40" in report(result)


async def test_more_questions_than_the_rate_limit_allows_are_refused() -> None:
    """Asking more per user than RATE_LIMIT would measure the flood notice, not the bot."""
    with pytest.raises(ValueError, match="RATE_LIMIT"):
        await run_bench(BenchOptions(questions=7), HashEmbedder(), {"rate_limit": 6})
