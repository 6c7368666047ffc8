from benchmarks.load import load_test, percentile
from distill.data.datasets import load_squad_file
from distill.pipelines.store_pipelines import write_store_pipelines


def test_eight_clients_get_the_sequential_answers_without_errors(pg_conn_str, tiny_embedder, tiny_squad, tmp_path):
    data = load_squad_file(tiny_squad)
    questions = [q.text for q in data.queries] * 4
    retrieval = write_store_pipelines("pgvector", tmp_path, embedder=str(tiny_embedder), name="distill_load", top_k=3)
    report = load_test(data.documents, questions, retrieval[1], clients=8, warmup=1)
    assert report["errors"] == 0, report["error_samples"]
    assert report["answered"] == report["questions"] == len(questions)
    assert report["answers_differing_from_sequential"] == 0
    assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["max_ms"]
    assert report["questions_per_second"] > 0 and report["sequential"]["p50_ms"] > 0


def test_percentile_is_nearest_rank():
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.95) == 4.0
    assert percentile([], 0.5) == 0.0
