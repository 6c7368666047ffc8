"""The pipeline teacher's document pass: rows in the documents' order, computed longest first."""

from __future__ import annotations

import numpy as np
from haystack import Document

from distill.pipelines.loading import read_pipeline_dict
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
