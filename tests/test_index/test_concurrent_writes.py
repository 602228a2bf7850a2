"""Several processes writing the same article at the same moment on PostgreSQL (replicas
seeding the sample articles at their first start, two admins adding one URL): the article
ends with one set of passages, and every process's vector index holds exactly those."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from index import IndexCore, IndexSettings
from tests import factories
from tests.fakes import HashEmbedder

WRITERS = 4


def test_the_same_article_written_at_once_by_several_processes_is_stored_once(
    postgres_url: str, tmp_path: Path
) -> None:
    cores = [
        IndexCore.open(
            IndexSettings(  # type: ignore[call-arg]
                data_dir=tmp_path / f"p{n}", database_url=postgres_url, _env_file=None
            ),
            HashEmbedder(),
        )
        for n in range(WRITERS)
    ]
    start = threading.Barrier(WRITERS)

    def ingest(core: IndexCore) -> None:
        start.wait()
        core.ingest([str(factories.SAMPLE)])

    try:
        with ThreadPoolExecutor(WRITERS) as pool:
            list(pool.map(ingest, cores))
        for core in cores:
            core.sync()
        stored = cores[0].store.passage_ids()
        expected = len(cores[0].store.passages(stored))

        assert cores[0].stats().articles == 1
        assert expected == len({p.text for p in cores[0].store.passages(stored).values()})
        for core in cores:
            assert sorted(core.vectors.ids().tolist()) == stored
    finally:
        for core in cores:
            core.close()
