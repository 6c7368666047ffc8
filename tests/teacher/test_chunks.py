"""The documents a user's indexing pipeline writes: its cleaner and splitter run once over a corpus and cached, the
chunk of each corpus document known, what evaluation indexes equal to what the pipeline itself writes, and bad
input as one line before any teacher pass."""

import json

import numpy as np
import pytest
from conftest import CLEANER, SPLITTER, chunked_pipeline, renamed_pipelines
from haystack import Document

from distill.errors import DistillError
from distill.pipelines.loading import load_pipeline, read_pipeline_dict
from distill.pipelines.user import read_user_pipelines
from distill.teacher.chunks import Preprocessing, preprocess
from distill.teacher.indexing import index_corpus

TEXTS = {
    "d0": "The Nile is the longest river in Africa. It flows north through Egypt into the Mediterranean Sea.",
    "d1": "Mozart wrote more than six hundred works. He was born in Salzburg in 1756.",
}


def corpus() -> list[Document]:
    return [Document(id=i, content=t, meta={"doc_id": i, "title": "T" + i}) for i, t in TEXTS.items()]


@pytest.fixture
def split_yaml(home, tiny_pipelines):
    index_yaml, _ = renamed_pipelines(tiny_pipelines, home / "mine")
    return chunked_pipeline(index_yaml, home / "mine" / "split_docs.yaml")


def prep_of(path) -> Preprocessing:
    return Preprocessing.of(read_pipeline_dict(path), "encode_docs", str(path))


def test_the_preprocessing_is_what_comes_before_the_document_embedder(split_yaml, home, tiny_pipelines):
    user = read_user_pipelines(split_yaml, home / "mine" / "search.yaml")
    assert user.indexing.preprocessing == ("clean", "split")
    assert read_user_pipelines(home / "mine" / "index_docs.yaml", split_yaml).indexing.preprocessing == ()
    prep = prep_of(split_yaml)
    assert (prep.names, prep.entry, prep.output) == (("clean", "split"), "clean", ("split", "documents"))
    assert prep.data["connections"] == [{"sender": "clean.documents", "receiver": "split.documents"}]
    assert Preprocessing.of(read_pipeline_dict(home / "mine" / "index_docs.yaml"), "encode_docs", "x") is None


def test_chunks_are_computed_once_and_cached_keyed_by_settings_and_corpus(split_yaml, home, monkeypatch):
    from haystack.components.preprocessors import DocumentSplitter

    runs = []  # documents the splitter split
    original = DocumentSplitter._split_document
    monkeypatch.setattr(DocumentSplitter, "_split_document", lambda self, doc: runs.append(doc) or original(self, doc))
    prep = prep_of(split_yaml)
    first = preprocess(prep, corpus())
    # what the cleaner and splitter make of the corpus when Haystack runs them, chunk for chunk
    direct = load_pipeline(prep.data).run({"clean": {"documents": corpus()}})["split"]["documents"]
    assert [(d.id, d.content, d.meta) for d in first.documents] == [(d.id, d.content, d.meta) for d in direct]
    assert len(first.documents) == 5 and not first.cached and len(runs) == 4
    # the cleaner gives new ids, so source_id names the cleaned copy; the corpus id comes from meta doc_id
    assert first.sources == ["d0"] * 3 + ["d1"] * 2
    assert all(d.meta["source_id"] not in TEXTS for d in first.documents)
    again = preprocess(prep, corpus())
    assert again.cached and len(runs) == 4  # read from the cache: the splitter did not run
    assert [(d.id, d.content, d.meta) for d in again.documents] == [(d.id, d.content, d.meta) for d in direct]
    assert again.summary() == {
        "documents": 2,
        "skipped_empty_documents": 0,
        "chunks": 5,
        "empty_chunks": 0,
        "documents_without_chunks": 0,
        "components": ["clean", "split"],
    }
    assert len(list((home / "home" / "chunks").glob("chunks-*.jsonl"))) == 1
    # another corpus, or another setting, is another entry
    preprocess(prep, corpus()[:1])
    longer = read_pipeline_dict(split_yaml)
    longer["components"]["split"]["init_parameters"]["split_length"] = 30
    assert len(preprocess(Preprocessing.of(longer, "encode_docs", "x"), corpus()).documents) == 2
    assert len(list((home / "home" / "chunks").glob("chunks-*.jsonl"))) == 3
    # a file that does not read is computed again, with a warning
    for path in (home / "home" / "chunks").glob("chunks-*.jsonl"):
        path.write_text("{not json")
    assert not preprocess(prep, corpus()).cached


def test_a_splitter_on_the_corpus_itself_names_it_by_source_id(home, tiny_pipelines):
    index_yaml, _ = renamed_pipelines(tiny_pipelines, home / "mine")
    index = read_pipeline_dict(chunked_pipeline(index_yaml, home / "split.yaml"))
    del index["components"]["clean"]
    index["connections"] = index["connections"][1:]
    docs = [Document(id=d.id, content=d.content, meta={"title": "x"}) for d in corpus()]  # no doc_id in meta
    chunks = preprocess(Preprocessing.of(index, "encode_docs", "x"), docs)
    assert chunks.sources == [d.meta["source_id"] for d in chunks.documents] == ["d0"] * 3 + ["d1"] * 2


def test_indexing_through_the_caches_writes_what_the_whole_pipeline_writes(split_yaml, home):
    """The usual preprocessing -> embedder -> writer: chunk ids, content, meta (source_id too) and embeddings are the
    pipeline's own, and a second indexing embeds nothing."""
    from haystack.document_stores.in_memory import InMemoryDocumentStore

    data = read_pipeline_dict(split_yaml)
    # In-memory stores of one index share documents inside a process: start from an empty "users-own", whatever
    # an earlier test (every renamed_pipelines user) left in it.
    store = InMemoryDocumentStore(index="users-own")
    store.delete_documents([d.id for d in store.filter_documents()])
    load_pipeline(data).run({"clean": {"documents": corpus()}})
    own = {d.id: d for d in store.filter_documents()}
    indexed = index_corpus(data, corpus(), progress=False, name="split_docs.yaml")
    ours = {d.id: d for d in store.filter_documents()}
    assert len(ours) == 5 and ours.keys() == own.keys()
    for i, d in ours.items():
        assert (d.content, d.meta) == (own[i].content, own[i].meta)
        assert np.allclose(d.embedding, own[i].embedding, atol=1e-5)
    assert indexed.summary() | {"embedded": 5, "embeddings_cached": 0} == indexed.summary()
    again = index_corpus(data, corpus(), progress=False, name="split_docs.yaml")
    assert (again.embedded, again.chunks.cached) == (0, True)
    assert {d.id for d in store.filter_documents()} == own.keys()


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"split_by": "sentence"}, "split_by: sentence"),
        ({"split_by": "token"}, "split_by: token"),
        ({"respect_sentence_boundary": True}, "respect_sentence_boundary: true"),
    ],
)
def test_a_splitter_that_downloads_is_refused_in_one_line(split_yaml, home, settings, setting):
    data = read_pipeline_dict(split_yaml)
    data["components"]["split"]["init_parameters"] |= settings
    for refuse in (
        lambda: Preprocessing.of(data, "encode_docs", "split_docs.yaml"),
        lambda: index_corpus(data, corpus()),
    ):
        with pytest.raises(DistillError) as caught:
            refuse()
        message = str(caught.value)
        assert len(message.splitlines()) == 1 and "component 'split' (DocumentSplitter)" in message
        assert setting in message and "split_by: word or passage" in message


def test_a_cleaner_that_leaves_no_text_is_named(split_yaml):
    data = read_pipeline_dict(split_yaml)
    data["components"]["clean"]["init_parameters"]["remove_regex"] = "[\\s\\S]+"
    with pytest.raises(DistillError) as caught:
        preprocess(Preprocessing.of(data, "encode_docs", "split_docs.yaml"), corpus())
    message = str(caught.value)
    assert len(message.splitlines()) == 1
    assert "component 'clean' (DocumentCleaner) left no text of the 2 documents" in message
    assert "(it made 2 documents, all empty)" in message and "remove_regex" in message


def test_documents_with_empty_content_are_counted_and_skipped(split_yaml):
    prep = prep_of(split_yaml)
    empty = [Document(id="n", content=None), Document(id="e", content=""), Document(id="w", content="  \n ")]
    chunks = preprocess(prep, corpus() + empty)
    assert (chunks.given, chunks.skipped_empty, len(chunks.documents)) == (5, 3, 5)
    with pytest.raises(DistillError, match="every one of the 3 documents has empty content"):
        preprocess(prep, empty)


def test_preprocessing_that_is_not_one_chain_is_one_line(split_yaml):
    data = read_pipeline_dict(split_yaml)
    data["components"]["other"] = {"type": CLEANER, "init_parameters": {}}
    data["connections"].append({"sender": "other.documents", "receiver": "split.documents"})
    data["components"]["split"]["type"] = SPLITTER
    with pytest.raises(DistillError, match=r"not one chain from the corpus to it \(2 take the corpus, 1 feed"):
        Preprocessing.of(data, "encode_docs", "x")


def test_the_cache_file_holds_its_key(split_yaml, home):
    preprocess(prep_of(split_yaml), corpus())
    (path,) = (home / "home" / "chunks").glob("chunks-*.jsonl")
    header = json.loads(path.read_text().splitlines()[0])
    assert header["format"] == 1 and set(header["namespace"]) == {
        "kind",
        "components",
        "connections",
        "entry",
        "output",
        "haystack",
        "corpus",
    }
    assert header["namespace"]["components"]["split"]["init_parameters"]["split_length"] == 8


def test_a_pipeline_that_starts_at_a_converter_is_one_line(split_yaml):
    data = read_pipeline_dict(split_yaml)
    data["components"] = {
        "convert": {"type": "haystack.components.converters.txt.TextFileToDocument", "init_parameters": {}}
    } | data["components"]
    data["connections"].append({"sender": "convert.documents", "receiver": "clean.documents"})
    prep = Preprocessing.of(data, "encode_docs", "split_docs.yaml")
    assert prep.names == ("convert", "clean", "split") and prep.entry == "convert"
    with pytest.raises(DistillError, match=r"component 'convert' \(TextFileToDocument\) takes no 'documents' input"):
        preprocess(prep, corpus())
