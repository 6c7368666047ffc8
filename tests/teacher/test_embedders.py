"""The pipeline teacher's document pass: rows in the documents' order, computed longest first."""

from __future__ import annotations

import numpy as np
import pytest
from haystack import Document

from distill.errors import DistillError
from distill.pipelines.loading import read_pipeline_dict
from distill.teacher.cache import TeacherCache
from distill.teacher.embedders import build_component, document_embeddings


def test_document_rows_come_back_in_order_though_computed_longest_first(home, tiny_pipelines):
    data = read_pipeline_dict(tiny_pipelines / "indexing.yaml")
    name = next(n for n, c in data["components"].items() if "DocumentEmbedder" in c["type"])
    component = build_component(data, name)
    seen: list[list[int]] = []
    run = component.run

    def recording(documents):
        seen.append([len(d.content) for d in documents])
        return run(documents=documents)

    component.run = recording
    words = "the river flows north through the desert to the sea".split()
    docs = [
        Document(id=f"d{i}", content=f"{i} " + " ".join(words[: 1 + (i * 7) % len(words)] * (1 + i % 5)))
        for i in range(150)
    ]
    rows = document_embeddings(data, name, docs, component=component, progress=False)

    probe, *chunks = seen  # the first call embeds one document to learn the width
    assert probe == [len(docs[0].content)]
    lengths = [n for batch in chunks for n in batch]
    assert [len(b) for b in chunks] == [64, 64, 22] and lengths == sorted(lengths, reverse=True)
    expected = build_component(data, name).run(documents=[Document(content=d.content) for d in docs])["documents"]
    assert np.allclose(rows, np.asarray([d.embedding for d in expected]), atol=1e-5)  # each row is its document's
    # a second pass reads every row from the cache, in the new order too
    seen.clear()
    again = document_embeddings(data, name, docs[::-1], component=component, progress=False)
    assert seen == [] and np.array_equal(again, rows[::-1])


def test_lengths_that_do_not_match_the_keys_are_refused_before_anything_is_computed(home):
    cache = TeacherCache(home / "cache", namespace={"kind": "test-lengths"}, row_shape=(2,))
    calls: list[list[int]] = []

    def compute(positions):
        calls.append(list(positions))
        return np.array([[p, p] for p in positions], dtype=np.float32)

    with pytest.raises(DistillError, match="one length per key: 1 for 2 keys"):
        cache.get(["a", "b"], compute, lengths=[3], progress=False)
    assert calls == []
    rows = cache.get(["a", "bbb"], compute, lengths=[1, 3], progress=False)
    assert calls == [[1, 0]]  # the longest first, as positions into the keys given
    assert rows.tolist() == [[0.0, 0.0], [1.0, 1.0]]  # returned in the keys' order
