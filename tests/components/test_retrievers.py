"""FastInMemoryEmbeddingRetriever against Haystack's InMemoryEmbeddingRetriever on the same stores.

Every test builds small seeded random stores; "same" means the same Document ids in the same order, scores within
1e-9 (the fast retriever rescores its candidates in float64, as Haystack scores) and otherwise equal Documents.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace

import numpy as np
import pytest
from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.core.errors import DeserializationError
from haystack.document_stores.errors import DocumentStoreError
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.document_stores.types import DuplicatePolicy, FilterPolicy

import distill  # noqa: F401  (telemetry off; conftest.py already imported it before haystack)
import distill.components.retrievers as components
from distill.components.retrievers import (
    FAST_RETRIEVER_TYPE,
    HAYSTACK_RETRIEVER_TYPE,
    EmbeddingDimensionError,
    FastInMemoryEmbeddingRetriever,
    use_fast_retrievers,
)
from distill.errors import DistillError
from distill.pipelines.haystack_yaml import parse_pipeline_yaml
from distill.pipelines.loading import dump_pipeline_dict

DIM = 16


def random_docs(n: int, seed: int, dim: int = DIM, start: int = 0) -> list[Document]:
    rng = np.random.default_rng(seed)
    # Uneven norms, so dot product and cosine rank differently.
    vectors = rng.normal(size=(n, dim)) * rng.uniform(0.2, 3.0, size=(n, 1))
    return [
        Document(
            content=f"doc {start + i}",
            meta={"group": (start + i) % 3, "odd": (start + i) % 2, "tags": ["a", "b"]},
            embedding=v.tolist(),
        )
        for i, v in enumerate(vectors)
    ]


def make_store(similarity: str, n: int = 300, seed: int = 0, **kwargs) -> InMemoryDocumentStore:
    store = InMemoryDocumentStore(embedding_similarity_function=similarity, shared=False, **kwargs)
    store.write_documents(random_docs(n, seed))
    return store


def queries(count: int, seed: int = 1, dim: int = DIM) -> list[list[float]]:
    return np.random.default_rng(seed).normal(size=(count, dim)).tolist()


def assert_same(fast: list[Document], reference: list[Document]) -> None:
    assert [d.id for d in fast] == [d.id for d in reference]
    assert [d.score for d in fast] == pytest.approx([d.score for d in reference], abs=1e-9, rel=0)
    assert all(isinstance(d.score, float) for d in fast)
    assert all(f == replace(r, score=f.score) for f, r in zip(fast, reference))


def both(store: InMemoryDocumentStore, **init) -> tuple[FastInMemoryEmbeddingRetriever, InMemoryEmbeddingRetriever]:
    return FastInMemoryEmbeddingRetriever(store, **init), InMemoryEmbeddingRetriever(store, **init)


def compare(store: InMemoryDocumentStore, query: list[float], **run) -> list[Document]:
    fast, reference = both(store)
    got = fast.run(query_embedding=query, **run)["documents"]
    assert_same(got, reference.run(query_embedding=query, **run)["documents"])
    return got


@pytest.mark.parametrize("similarity", ["dot_product", "cosine"])
@pytest.mark.parametrize("scale_score", [False, True])
@pytest.mark.parametrize("top_k", [1, 5, 10, 299, 300, 400])
def test_same_documents_scores_and_order_as_haystack(
    similarity: str, scale_score: bool, top_k: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(similarity)
    fast, reference = both(store, top_k=top_k, scale_score=scale_score)
    for query in queries(5):
        with monkeypatch.context() as patch:
            patch.setattr(store, "embedding_retrieval", None)  # the fast path must answer on its own
            got = fast.run(query_embedding=query)["documents"]
        assert len(got) == min(top_k, 300)
        assert_same(got, reference.run(query_embedding=query)["documents"])


@pytest.mark.parametrize("similarity", ["dot_product", "cosine"])
def test_run_arguments_override_init_settings(similarity: str) -> None:
    store = make_store(similarity)
    query = queries(1)[0]
    for run in [{"top_k": 3}, {"top_k": 0}, {"scale_score": True}, {"return_embedding": True}]:
        compare(store, query, **run)


def test_ties_keep_storage_order_like_haystack() -> None:
    # Small integers keep every product exact, so these ties are real ties for both retrievers.
    store = InMemoryDocumentStore(shared=False)
    vectors = [[1.0, 0.0], [2.0, 0.0], [1.0, 0.0], [0.0, 1.0], [2.0, 0.0], [1.0, 0.0], [2.0, 0.0]]
    store.write_documents([Document(content=f"tie {i}", embedding=v) for i, v in enumerate(vectors)])
    for top_k in [1, 2, 3, 4, 7]:
        got = compare(store, [1.0, 0.0], top_k=top_k)
        assert [d.content for d in got][:3] == ["tie 1", "tie 4", "tie 6"][:top_k]


def test_large_dot_products_match_exactly_where_float32_would_not() -> None:
    # Scores of order 1e4 and near-ties 1e-3 apart: float32 alone is off by ~1e-3 and could swap them.
    store = InMemoryDocumentStore(shared=False)
    base = np.random.default_rng(3).normal(size=64) * 20
    docs = [Document(content=f"near {i}", embedding=(base + 1e-6 * i).tolist()) for i in range(40)]
    store.write_documents(docs + random_docs(200, seed=4, dim=64, start=40))
    for top_k in [1, 5, 39, 45]:
        compare(store, (base * 0.7).tolist(), top_k=top_k)


def test_float32_rounding_cannot_pick_the_wrong_document() -> None:
    # In float32, a rounds up to 1 + u and b to 1 + 0 (u = 2**-23), inverting the exact order b > a.
    u = 2.0**-23
    a, b = [1 + 0.55 * u, 0.0], [1 + 0.45 * u, 0.2 * u]
    assert np.float32(a[0]) + np.float32(a[1]) > np.float32(b[0]) + np.float32(b[1])
    store = InMemoryDocumentStore(shared=False)
    store.write_documents([Document(content="a", embedding=a), Document(content="b", embedding=b)])
    store.write_documents([Document(content=f"low {i}", embedding=[0.1 * i, 0.0]) for i in range(5)])
    for top_k in [1, 2]:
        for scale_score in [False, True]:
            got = compare(store, [1.0, 1.0], top_k=top_k, scale_score=scale_score)
            assert [d.content for d in got] == ["b", "a"][:top_k]


def test_zero_vectors_and_documents_without_embeddings_like_haystack() -> None:
    store = InMemoryDocumentStore(embedding_similarity_function="cosine", shared=False)
    store.write_documents(random_docs(20, seed=5))
    store.write_documents([Document(content="no embedding"), Document(content="zero", embedding=[0.0] * DIM)])
    got = compare(store, queries(1)[0], top_k=22)
    assert len(got) == 21 and "no embedding" not in [d.content for d in got]
    compare(store, [0.0] * DIM, top_k=5)  # a zero query scores everything 0: storage order


def test_empty_store_returns_nothing() -> None:
    store = InMemoryDocumentStore(shared=False)
    assert FastInMemoryEmbeddingRetriever(store).run(query_embedding=[0.1, 0.2])["documents"] == []
    store.write_documents([Document(content="no embedding")])
    assert FastInMemoryEmbeddingRetriever(store).run(query_embedding=[0.1, 0.2])["documents"] == []


@pytest.mark.parametrize("similarity", ["dot_product", "cosine"])
def test_store_changes_are_picked_up(similarity: str) -> None:
    store = make_store(similarity, n=50)
    fast, reference = both(store, top_k=5)
    query = queries(1)[0]

    def check() -> list[Document]:
        got = fast.run(query_embedding=query)["documents"]
        assert_same(got, reference.run(query_embedding=query)["documents"])
        return got

    first = check()
    index = fast._index
    check()
    assert fast._index is index, "an unchanged store must not rebuild the matrix"

    # A new document that matches the query best.
    store.write_documents([Document(content="new best", embedding=[10.0 * x for x in query])])
    assert check()[0].content == "new best"

    # Overwrite the current best with a poor embedding under the same id: the count does not change.
    best = first[0]
    assert store.count_documents() == 51
    overwritten = Document(id=best.id, content=best.content, embedding=[-x for x in query])
    store.write_documents([overwritten], policy=DuplicatePolicy.OVERWRITE)
    assert store.count_documents() == 51
    assert best.id not in [d.id for d in check()]

    # Delete the new best and then everything.
    new_best = next(d.id for d in store.filter_documents() if d.content == "new best")
    store.delete_documents([new_best])
    assert new_best not in [d.id for d in check()]
    store.delete_all_documents()
    assert check() == []


def test_shared_index_changes_through_another_store_instance() -> None:
    index = f"test-{uuid.uuid4()}"
    store = InMemoryDocumentStore(index=index)
    store.write_documents(random_docs(30, seed=6))
    fast, reference = both(store, top_k=3)
    query = queries(1)[0]
    fast.run(query_embedding=query)
    InMemoryDocumentStore(index=index).write_documents([Document(content="other", embedding=query)])
    got = fast.run(query_embedding=query)["documents"]
    assert_same(got, reference.run(query_embedding=query)["documents"])
    assert got[0].content == "other"


@pytest.mark.parametrize("similarity", ["dot_product", "cosine"])
def test_rescoring_reads_the_index_not_each_documents_embedding_list(similarity: str) -> None:
    store = make_store(similarity, n=50)
    fast, reference = both(store, top_k=5)
    query = queries(1)[0]
    expected = reference.run(query_embedding=query)["documents"]
    fast.warm_up()
    for doc in store.storage.values():  # the lists are not read again per query (bypassing Haystack's warning)
        object.__setattr__(doc, "embedding", None)
    got = fast.run(query_embedding=query)["documents"]
    assert [d.id for d in got] == [d.id for d in expected]
    assert [d.score for d in got] == pytest.approx([d.score for d in expected], abs=1e-9, rel=0)


def test_clear_cache_after_in_place_edit() -> None:
    store = make_store("dot_product", n=20)
    fast, reference = both(store, top_k=3)
    query = queries(1)[0]
    fast.run(query_embedding=query)
    stored = next(iter(store.storage.values()))
    with pytest.warns(Warning, match="Mutating attribute 'embedding'"):  # Haystack itself discourages this
        stored.embedding = [100.0 * x for x in query]  # bypasses write_documents: the documented blind spot
    fast.clear_cache()
    got = fast.run(query_embedding=query)["documents"]
    assert_same(got, reference.run(query_embedding=query)["documents"])
    assert got[0].id == stored.id


@pytest.mark.parametrize("policy", [FilterPolicy.REPLACE, FilterPolicy.MERGE])
def test_filters_take_haystacks_path(policy: FilterPolicy) -> None:
    store = make_store("cosine")
    init_filters = {"field": "meta.odd", "operator": "==", "value": 1}
    fast, reference = both(store, top_k=7, filters=init_filters, filter_policy=policy)
    run_filters = {"field": "meta.group", "operator": "==", "value": 1}
    for query in queries(3):
        for run in [{}, {"filters": run_filters}, {"filters": run_filters, "scale_score": True, "top_k": 2}]:
            got = fast.run(query_embedding=query, **run)["documents"]
            assert got
            assert_same(got, reference.run(query_embedding=query, **run)["documents"])
    got = fast.run(query_embedding=queries(1)[0], filters=run_filters, top_k=50)["documents"]
    # REPLACE drops the init filter; MERGE keeps both.
    assert {d.meta["group"] for d in got} == {1}
    assert {d.meta["odd"] for d in got} == ({1} if policy == FilterPolicy.MERGE else {0, 1})


def test_too_many_candidates_fall_back_to_haystack(monkeypatch: pytest.MonkeyPatch) -> None:
    store = make_store("dot_product")
    calls: list[int] = []
    original = store.embedding_retrieval

    def spy(**kwargs):
        calls.append(kwargs["top_k"])
        return original(**kwargs)

    monkeypatch.setattr(store, "embedding_retrieval", spy)
    monkeypatch.setattr(components, "MAX_RESCORED", 8)
    fast, reference = both(store)
    query = queries(1)[0]
    for top_k in [5, 9, 300]:
        assert_same(
            fast.run(query_embedding=query, top_k=top_k)["documents"],
            reference.run(query_embedding=query, top_k=top_k)["documents"],
        )
    assert calls == [5, 9, 9, 300, 300]  # the fast path answered top_k=5 alone


@pytest.mark.parametrize("return_embedding", [False, True])
def test_return_embedding(return_embedding: bool) -> None:
    store = make_store("cosine", n=30)
    stored = {d.id: d for d in store.filter_documents()}
    fast, reference = both(store, top_k=4, return_embedding=return_embedding)
    query = queries(1)[0]
    got = fast.run(query_embedding=query)["documents"]
    assert_same(got, reference.run(query_embedding=query)["documents"])
    for doc in got:
        assert doc.embedding == (stored[doc.id].embedding if return_embedding else None)
    # The override at run time wins over the init setting.
    flipped = fast.run(query_embedding=query, return_embedding=not return_embedding)["documents"]
    assert all((d.embedding is not None) is (not return_embedding) for d in flipped)


def test_results_are_copies_not_the_stored_documents() -> None:
    store = make_store("dot_product", n=10)
    got = FastInMemoryEmbeddingRetriever(store, top_k=2, return_embedding=True).run(query_embedding=queries(1)[0])
    doc = got["documents"][0]
    doc.meta["tags"].append("edited")
    doc.embedding[0] = 1e9
    stored = store.storage[doc.id]
    assert stored.meta["tags"] == ["a", "b"] and stored.embedding[0] != 1e9 and stored.score is None


def test_wrong_query_dimension_names_both_widths() -> None:
    store = InMemoryDocumentStore(shared=False, index="student-index")
    store.write_documents(random_docs(5, seed=7))
    fast = FastInMemoryEmbeddingRetriever(store)
    with pytest.raises(EmbeddingDimensionError, match=r"has 3 dimensions .* have 16") as error:
        fast.run(query_embedding=[0.1, 0.2, 0.3])
    assert "student-index" in str(error.value)
    assert isinstance(error.value, DocumentStoreError) and isinstance(error.value, DistillError)
    # Haystack raises for the same mistake, even with top_k=0, and so does this retriever.
    with pytest.raises(DocumentStoreError):
        InMemoryEmbeddingRetriever(store).run(query_embedding=[0.1, 0.2, 0.3], top_k=0)
    with pytest.raises(EmbeddingDimensionError):
        fast.run(query_embedding=[0.1, 0.2, 0.3], top_k=0)


def test_mixed_document_widths_are_an_error() -> None:
    store = InMemoryDocumentStore(shared=False)
    store.write_documents(random_docs(3, seed=8) + random_docs(2, seed=9, dim=8, start=3))
    with pytest.raises(DocumentStoreError, match=r"different sizes \[8, 16\]"):
        FastInMemoryEmbeddingRetriever(store).run(query_embedding=queries(1)[0])


def test_invalid_arguments_like_haystack() -> None:
    store = make_store("cosine", n=5)
    with pytest.raises(TypeError, match="InMemoryDocumentStore"):
        FastInMemoryEmbeddingRetriever(document_store=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="top_k must be greater than 0, but got 0"):
        FastInMemoryEmbeddingRetriever(store, top_k=0)
    fast = FastInMemoryEmbeddingRetriever(store)
    with pytest.raises(ValueError, match="greater than or equal to 0, but got -1"):
        fast.run(query_embedding=queries(1)[0], top_k=-1)
    for bad in [[], [1, 2]]:
        with pytest.raises(ValueError, match="non-empty list of floats"):
            fast.run(query_embedding=bad)


def test_warm_up_builds_once_and_run_async_matches_run() -> None:
    store = make_store("cosine", n=40)
    fast = FastInMemoryEmbeddingRetriever(store, top_k=4)
    fast.warm_up()
    index = fast._index
    assert index is not None and index.matrix.shape == (40, DIM) and index.matrix.dtype == np.float32
    fast.warm_up()
    assert fast._index is index
    query = queries(1)[0]
    assert asyncio.run(fast.run_async(query_embedding=query)) == fast.run(query_embedding=query)


def test_run_async_declares_exactly_runs_parameters_and_outputs() -> None:
    import inspect

    run, run_async = FastInMemoryEmbeddingRetriever.run, FastInMemoryEmbeddingRetriever.run_async
    assert inspect.signature(run_async) == inspect.signature(run)
    assert inspect.iscoroutinefunction(run_async) and run_async.__name__ == "run_async"
    assert run_async._output_types_cache == run._output_types_cache
    store = make_store("dot_product", n=30)
    fast = FastInMemoryEmbeddingRetriever(store, top_k=3)
    query = queries(1)[0]
    assert asyncio.run(fast.run_async(query, None, 2)) == fast.run(query_embedding=query, top_k=2)  # positional too
    pipeline = Pipeline()
    pipeline.add_component("retriever", fast)
    got = asyncio.run(pipeline.run_async({"retriever": {"query_embedding": query}}))["retriever"]["documents"]
    assert_same(got, InMemoryEmbeddingRetriever(store, top_k=3).run(query_embedding=query)["documents"])


def test_to_dict_from_dict_round_trips_every_init_parameter() -> None:
    store = InMemoryDocumentStore(embedding_similarity_function="cosine", index=f"test-{uuid.uuid4()}")
    init = {
        "filters": {"field": "meta.group", "operator": "==", "value": 1},
        "top_k": 7,
        "scale_score": True,
        "return_embedding": True,
        "filter_policy": FilterPolicy.MERGE,
    }
    fast = FastInMemoryEmbeddingRetriever(store, **init)
    data = fast.to_dict()
    assert data["type"] == FAST_RETRIEVER_TYPE == "distill.components.retrievers.FastInMemoryEmbeddingRetriever"
    reference = InMemoryEmbeddingRetriever(store, **init).to_dict()
    assert data["init_parameters"] == reference["init_parameters"]
    assert data["init_parameters"]["filter_policy"] == "merge"

    restored = FastInMemoryEmbeddingRetriever.from_dict(data)
    assert data["init_parameters"]["filter_policy"] == "merge", "from_dict must not edit its input"
    for name, value in init.items():
        assert getattr(restored, name) == value
    assert restored.document_store.to_dict() == store.to_dict()
    assert restored.to_dict() == data


def query_pipeline(retriever) -> Pipeline:
    pipeline = Pipeline()
    pipeline.add_component("retriever", retriever)
    return pipeline


def test_pipeline_yaml_round_trip_needs_the_allowlist() -> None:
    index = f"test-{uuid.uuid4()}"
    store = InMemoryDocumentStore(embedding_similarity_function="cosine", index=index)
    store.write_documents(random_docs(100, seed=10))
    text = query_pipeline(FastInMemoryEmbeddingRetriever(store, top_k=6, scale_score=True)).dumps()
    assert FAST_RETRIEVER_TYPE in text

    loaded = Pipeline.loads(text, allowed_modules=["distill.*"])
    retriever = loaded.get_component("retriever")
    assert isinstance(retriever, FastInMemoryEmbeddingRetriever)
    assert retriever.top_k == 6 and retriever.scale_score is True and retriever.document_store.index == index
    query = queries(1)[0]
    got = loaded.run({"retriever": {"query_embedding": query}})["retriever"]["documents"]
    reference = InMemoryEmbeddingRetriever(store, top_k=6, scale_score=True).run(query_embedding=query)
    assert_same(got, reference["documents"])

    with pytest.raises(DeserializationError, match="allowlist"):
        Pipeline.loads(text)


def test_use_fast_retrievers_converts_only_in_memory_embedding_retrievers() -> None:
    index = f"test-{uuid.uuid4()}"
    store = InMemoryDocumentStore(index=index)
    store.write_documents(random_docs(50, seed=11))
    pipeline = Pipeline()
    pipeline.add_component("dense", InMemoryEmbeddingRetriever(store, top_k=4, scale_score=True))
    pipeline.add_component("sparse", InMemoryBM25Retriever(store, top_k=4))
    pipeline.add_component(
        "dense_filtered",
        InMemoryEmbeddingRetriever(store, filters={"field": "meta.group", "operator": "==", "value": 0}),
    )
    data = parse_pipeline_yaml(pipeline.dumps(), "pipeline")
    before = dump_pipeline_dict(data)

    fast = use_fast_retrievers(data)
    assert dump_pipeline_dict(data) == before, "the input must be left untouched"
    types = {name: c["type"] for name, c in fast["components"].items()}
    assert types["dense"] == types["dense_filtered"] == FAST_RETRIEVER_TYPE
    assert types["sparse"] == data["components"]["sparse"]["type"]
    assert all(fast["components"][n]["init_parameters"] == c["init_parameters"] for n, c in data["components"].items())
    assert data["components"]["dense"]["type"] == HAYSTACK_RETRIEVER_TYPE

    loaded = Pipeline.from_dict(fast, allowed_modules=["distill.*"])
    query = queries(1)[0]
    inputs = {
        "dense": {"query_embedding": query},
        "dense_filtered": {"query_embedding": query},
        "sparse": {"query": "doc 3"},
    }
    got, reference = loaded.run(inputs), pipeline.run(inputs)
    assert_same(got["dense"]["documents"], reference["dense"]["documents"])
    assert_same(got["dense_filtered"]["documents"], reference["dense_filtered"]["documents"])
    assert [d.id for d in got["sparse"]["documents"]] == [d.id for d in reference["sparse"]["documents"]]


def test_use_fast_retrievers_rejects_a_non_pipeline() -> None:
    with pytest.raises(DistillError, match="'components' mapping"):
        use_fast_retrievers({"connections": []})


def test_fast_pipeline_copies_return_exactly_what_haystacks_copier_returns():
    from haystack import Document
    from haystack.core.pipeline import base, pipeline
    from haystack.core.pipeline.utils import _deepcopy_with_exceptions as original

    from distill.components.retrievers import _copy_atoms_fast, fast_pipeline_copies

    fast = _copy_atoms_fast(original)
    embedding = [0.1 * i for i in range(384)]
    cases = [
        embedding,
        [1, "a", None, True, 2.5],
        {"text": "q", "top_k": 3},
        {"documents": [Document(content="x", meta={"a": [1, 2]})], "query": "q"},
        [[1.0, 2.0], [3.0]],
        {"query_embedding": embedding, "filters": {"a": [1, 2]}, "top_k": None},
        (1.0, 2.0),
        "plain",
        7,
        [],
    ]
    for value in cases:
        ours, theirs = fast(value), original(value)
        assert ours == theirs and type(ours) is type(theirs)
        if isinstance(value, (list, dict)):
            assert ours is not value  # still a copy: a component editing its input cannot reach the caller's
    copied = fast(embedding)
    assert all(a is b for a, b in zip(copied, embedding))  # atoms are shared, as deepcopy shares them
    assert fast_pipeline_copies()
    assert base._deepcopy_with_exceptions.distill_fast_copy and pipeline._deepcopy_with_exceptions.distill_fast_copy
    assert fast_pipeline_copies()  # idempotent: never wraps twice
    assert pipeline._deepcopy_with_exceptions.__wrapped__ is original


@pytest.fixture()
def haystack_copier(monkeypatch: pytest.MonkeyPatch):
    """Haystack's own copier in both pipeline modules for this test (an earlier test may have patched them)."""
    from haystack.core.pipeline import base, pipeline
    from haystack.core.pipeline.utils import _deepcopy_with_exceptions as original

    for module in (base, pipeline):
        monkeypatch.setattr(module, "_deepcopy_with_exceptions", original)
    monkeypatch.delenv("DISTILL_HAYSTACK_FAST_COPY", raising=False)
    return lambda: [module._deepcopy_with_exceptions for module in (base, pipeline)], original


def test_building_the_retriever_patches_nothing_and_warm_up_turns_fast_copies_on(haystack_copier) -> None:
    copiers, original = haystack_copier
    fast = FastInMemoryEmbeddingRetriever(make_store("cosine", n=20), top_k=3)
    FastInMemoryEmbeddingRetriever.from_dict(fast.to_dict())
    assert copiers() == [original, original]  # a user who only builds or inspects it finds Haystack untouched
    fast.warm_up()
    assert all(c.distill_fast_copy and c.__wrapped__ is original for c in copiers())


def test_a_pipeline_run_warms_the_retriever_up_and_so_turns_fast_copies_on(haystack_copier) -> None:
    copiers, original = haystack_copier
    store = make_store("cosine", n=20)
    pipeline = Pipeline()
    pipeline.add_component("retriever", FastInMemoryEmbeddingRetriever(store, top_k=3))
    assert copiers() == [original, original]
    query = queries(1)[0]
    got = pipeline.run({"retriever": {"query_embedding": query}})["retriever"]["documents"]
    assert all(c.distill_fast_copy for c in copiers())
    assert_same(got, InMemoryEmbeddingRetriever(store, top_k=3).run(query_embedding=query)["documents"])


def test_fast_copies_stay_off_when_turned_off(haystack_copier, monkeypatch: pytest.MonkeyPatch) -> None:
    copiers, original = haystack_copier
    monkeypatch.setenv("DISTILL_HAYSTACK_FAST_COPY", "0")
    FastInMemoryEmbeddingRetriever(make_store("cosine", n=20)).warm_up()
    assert copiers() == [original, original]
