"""Server and Qdrant stores in the YAML pipelines, against a real PostgreSQL + pgvector (the pg_server fixture)."""

import pytest

from benchmarks.stores import compare, same_ranking, write_pipelines
from distill.data.datasets import load_squad_file
from distill.errors import DistillError
from distill.pipelines import loading as pipelines
from distill.pipelines.store_pipelines import write_store_pipelines
from distill.pipelines.stores import component_store, embedding_width, student_name
from distill.teacher.indexing import index_corpus


def _store(path, component="retriever"):
    data = pipelines.read_pipeline_dict(path)
    return data["components"][component]["init_parameters"]["document_store"]["init_parameters"]


@pytest.mark.parametrize("kind", ["pgvector", "qdrant"])
def test_swap_gives_each_student_its_own_collection_and_writes_no_connection_string(
    kind, pg_conn_str, pg_server, tiny_embedder, tiny_embedder_wide, tmp_path
):
    teacher = write_store_pipelines(kind, tmp_path / "teacher", embedder=str(tiny_embedder_wide))
    student = pipelines.swap_files(teacher, tmp_path / "student", model=str(tiny_embedder))
    query_only = pipelines.swap_files(
        teacher, tmp_path / "query-only", model=str(tiny_embedder), components=["text_embedder"], keep_index=True
    )
    teacher_store, student_store = _store(teacher[1]), _store(student[1])
    assert _store(student[0], "writer") == student_store  # indexing and query pipelines agree
    assert _store(query_only[1]) == teacher_store  # a query-only student searches the teacher's collection
    if kind == "pgvector":
        assert (teacher_store["table_name"], teacher_store["embedding_dimension"]) == ("distill_teacher", 48)
        name = student_store["table_name"]
        assert name.startswith("distill_student_") and student_store["embedding_dimension"] == 32
        assert (student_store["hnsw_index_name"], student_store["keyword_index_name"]) == (
            f"{name}_hnsw",
            f"{name}_keyword",
        )  # index names are unique per schema: the teacher's would collide
        assert student_store["recreate_table"] is False
        assert student_store["connection_string"] == {"type": "env_var", "env_vars": ["PG_CONN_STR"], "strict": True}
    else:
        assert student_store["index"].startswith("distill-student-") and student_store["embedding_dim"] == 32
        assert teacher_store["embedding_dim"] == 48 and student_store["recreate_index"] is False
    for path in [*teacher, *student, *query_only]:
        text = path.read_text()
        assert pg_conn_str not in text and pg_server.password not in text


def test_student_names_fit_postgres_identifiers():
    name = student_name({"type": "x.PgvectorDocumentStore"}, "a-" * 60)
    assert len(name) <= 55 and name.startswith("distill_student_a_a")
    assert student_name({"type": "x.InMemoryDocumentStore"}, "m") == "student-m"


def test_embedding_width_reads_the_folder(tiny_embedder, tiny_embedder_wide, tmp_path):
    assert (embedding_width(tiny_embedder), embedding_width(tiny_embedder_wide)) == (32, 48)
    assert embedding_width(tmp_path) is None
    assert embedding_width({"k": 1}) is None  # a malformed pipeline's model (found by the fuzz test)


def test_server_and_qdrant_stores_return_the_in_memory_top_k(pg_conn_str, tiny_embedder, tiny_squad, tmp_path):
    data = load_squad_file(tiny_squad)
    retrieval = write_pipelines(tmp_path / "p", str(tiny_embedder), top_k=3, qdrant_path=tmp_path / "qdrant")
    questions = [q.text for q in data.queries]
    report = compare(data.documents, questions, retrieval)
    assert report["pgvector-exact"]["same_top_k"] == 1.0, report
    assert report["qdrant"]["same_top_k"] == 1.0, report
    assert report["in-memory"]["questions_differing"] == 0
    assert 0.0 <= report["pgvector-hnsw"]["recall_of_exact_top_k"] <= 1.0
    # Every store was indexed (not timed: six tiny passages, their embeddings perhaps served by the teacher cache, may
    # index in less than the report's rounding).
    for name, path in retrieval.items():
        store = component_store(pipelines.load_pipeline(path).get_component("retriever"))
        assert store.count_documents() == len(data.documents) and report[name]["index_seconds"] >= 0, name
    # a second evaluation empties the tables it owns (distill_*) before indexing: no duplicates, none missing
    compare(data.documents, questions[:2], retrieval)
    store = pipelines.load_pipeline(retrieval["pgvector-exact"]).get_component("retriever").document_store
    assert store.count_documents() == len(data.documents)


def test_same_ranking_allows_ties_only():
    from haystack import Document

    a, b, c = (Document(id=i, content=i) for i in "abc")
    ranked = [Document(id=d.id, content=d.content, score=s) for d, s in zip((a, b, c), (0.9, 0.5, 0.5))]
    swapped = [ranked[0], ranked[2], ranked[1]]
    assert same_ranking(ranked, swapped)
    assert not same_ranking(ranked, [ranked[1], ranked[0], ranked[2]])


def test_a_users_table_is_never_emptied(pg_conn_str, tiny_embedder, tiny_squad, tmp_path):
    from haystack import Document

    data = load_squad_file(tiny_squad)
    paths = write_store_pipelines("pgvector", tmp_path, embedder=str(tiny_embedder), name="my_docs")
    store = pipelines.load_pipeline(paths[1]).get_component("retriever").document_store
    store.write_documents([Document(id="mine", content="kept", embedding=[0.1] * 32)])
    index_corpus(pipelines.read_pipeline_dict(paths[0]), data.documents, progress=False)
    assert store.count_documents() == len(data.documents) + 1
    assert store.filter_documents({"field": "id", "operator": "==", "value": "mine"})


def _pgvector_yaml(tmp_path, tiny_embedder, **store_settings):
    path = write_store_pipelines("pgvector", tmp_path, embedder=str(tiny_embedder))[1]
    data = pipelines.read_pipeline_dict(path)
    data["components"]["retriever"]["init_parameters"]["document_store"]["init_parameters"].update(store_settings)
    path.write_text(pipelines.dump_pipeline_dict(data))
    return path


def test_wrong_connection_string_is_one_line(pg_server, tiny_embedder, tmp_path, monkeypatch):
    path = _pgvector_yaml(tmp_path, tiny_embedder)
    monkeypatch.setenv("PG_CONN_STR", pg_server.url("postgres", password="wrong"))
    with pytest.raises(DistillError, match=r"cannot connect to PostgreSQL with \$PG_CONN_STR .*password auth"):
        pipelines.load_pipeline(path)
    monkeypatch.setenv("PG_CONN_STR", f"postgresql://postgres@127.0.0.1:{pg_server.port + 1}/postgres")
    with pytest.raises(DistillError, match=r"check the host, port, user, password and database in \$PG_CONN_STR"):
        pipelines.load_pipeline(path)
    monkeypatch.delenv("PG_CONN_STR")
    with pytest.raises(DistillError, match="connection string is not set: export PG_CONN_STR=postgresql://"):
        pipelines.load_pipeline(path)


def test_missing_pgvector_extension_is_one_line(pg_server, tiny_embedder, tmp_path, monkeypatch):
    pg_server.execute("DROP DATABASE IF EXISTS no_vector")
    pg_server.execute("CREATE DATABASE no_vector")
    monkeypatch.setenv("PG_CONN_STR", pg_server.url("no_vector"))
    path = _pgvector_yaml(tmp_path, tiny_embedder, create_extension=False)
    with pytest.raises(DistillError, match=r"has no pgvector extension .*run `CREATE EXTENSION vector;`") as error:
        pipelines.load_pipeline(path)
    assert "\n" not in str(error.value)


def test_a_table_of_another_width_is_one_line(pg_conn_str, tiny_embedder, tiny_embedder_wide, tmp_path):
    teacher = write_store_pipelines("pgvector", tmp_path / "t", embedder=str(tiny_embedder_wide), name="distill_wide")
    pipelines.load_pipeline(teacher[1])  # creates the teacher's 48-d table
    query_only = pipelines.swap_files(
        teacher, tmp_path / "q", model=str(tiny_embedder), components=["text_embedder"], keep_index=True
    )
    with pytest.raises(DistillError, match=r"distill_wide holds 48-d vectors but the pipeline's embedder makes 32-d"):
        pipelines.load_pipeline(query_only[1])


def test_local_postgres_copies_its_programs_where_nobody_can_run_them(pg_server, monkeypatch):
    import os

    from benchmarks import local_postgres

    if os.geteuid() != 0:
        pytest.skip("the copy is for root, whose virtual environment may sit where `nobody` cannot reach")
    monkeypatch.setattr(local_postgres, "_reachable_by_others", lambda path: False)
    with local_postgres.LocalPostgres() as server:
        assert server.folder in server._bin.parents
        assert server.execute("SELECT extname FROM pg_extension WHERE extname = 'vector'") == [("vector",)]
        assert server.execute("SELECT current_user") == [("postgres",)]
    assert server.folder is None
