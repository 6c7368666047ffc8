import json

import pytest
from conftest import write_judged_beir

from distill.data import datasets as data
from distill.errors import DistillError


def test_squad_file_gives_documents_and_queries(tiny_squad):
    ds = data.load_squad_file(tiny_squad)
    assert len(ds.documents) == 6 and len(ds.queries) == 8
    doc = ds.documents[2]
    assert doc.id == "1-0" and doc.meta == {"doc_id": "1-0", "title": "Music"}
    q = next(q for q in ds.queries if q.text == "Where was Mozart born?")
    assert q.gold_doc_ids == ("1-0",) and q.answers == ("Salzburg",)
    assert ds.document("1-0").content[q.answer_starts[0] :].startswith("Salzburg")


def test_subsets_are_seeded(tiny_squad):
    ds = data.load_squad_file(tiny_squad)
    a = ds.subset(articles=2, seed=3)
    assert a.documents == ds.subset(articles=2, seed=3).documents
    assert len({d.meta["title"] for d in a.documents}) == 2
    assert all(set(q.gold_doc_ids) <= {d.id for d in a.documents} for q in a.queries)
    b = ds.subset(questions=3, seed=1)
    assert len(b.queries) == 3 and len(b.documents) == 6
    assert [q.id for q in b.queries] == [q.id for q in ds.subset(questions=3, seed=1).queries]
    assert b.fingerprint() != ds.fingerprint()
    with pytest.raises(DistillError, match="questions must be between 1 and 8"):
        ds.subset(questions=9)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"version": "1"}, "missing field 'data'"),
        (
            {"data": [{"title": "x", "paragraphs": [{"qas": []}]}]},
            r"data\[0\].paragraphs\[0\]: missing field 'context'",
        ),
        (
            {
                "data": [
                    {"paragraphs": [{"context": "c", "qas": [{"id": "7", "question": "q?", "answers": [{"text": 1}]}]}]}
                ]
            },
            r"qas\[0\].answers\[0\] \(id 7\): field 'text' must be str",
        ),
        ({"data": []}, "the corpus is empty"),
    ],
)
def test_malformed_squad_names_file_record_and_field(tmp_path, payload, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(payload))
    with pytest.raises(DistillError, match=message) as err:
        data.load_squad_file(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("text, message", [(None, "does not exist"), ("{not json", "not valid JSON")])
def test_missing_and_invalid_squad_files(tmp_path, text, message):
    path = tmp_path / "squad.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(DistillError, match=message):
        data.load_squad_file(path)


def test_missing_data_specs(tmp_path):
    with pytest.raises(DistillError, match="does not exist"):
        data.load_dataset(str(tmp_path / "nothing.json"))
    with pytest.raises(DistillError, match="not found: give squad-dev"):
        data.load_dataset("squad-test")


def test_beir_folder(tmp_path):
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text(
        '{"_id": "d1", "title": "T", "text": "alpha"}\n{"_id": "d2", "text": "beta"}\n'
    )
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "which alpha?"}\n{"_id": "q2", "text": "x"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t0\n")
    ds = data.load_dataset(str(tmp_path))
    assert [d.id for d in ds.documents] == ["d1", "d2"]
    assert [(q.id, q.gold_doc_ids) for q in ds.queries] == [("q1", ("d1",))]
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1"}\n')
    with pytest.raises(DistillError, match=r"corpus.jsonl: line 1: missing field 'text'"):
        data.load_beir(tmp_path)
    (tmp_path / "corpus.jsonl").write_text("")
    with pytest.raises(DistillError, match="the corpus is empty"):
        data.load_beir(tmp_path)


def test_unlabelled_jsonl(tmp_path):
    path = tmp_path / "texts.jsonl"
    path.write_text('{"passage": "some text"}\n\n{"question": "what?"}\n{"text": "t", "query": "q"}\n')
    ds = data.load_dataset(str(path))
    assert [d.content for d in ds.documents] == ["some text", "t"]
    assert [q.text for q in ds.queries] == ["what?", "q"]
    path.write_text('{"other": 1}\n')
    with pytest.raises(DistillError, match="line 1 needs a 'passage' .* or Haystack's 'content'"):
        data.load_jsonl(path)


def haystack_jsonl(path, documents, flatten):
    """A corpus as a Haystack user saves one: ``Document.to_dict()`` per line."""
    path.write_text("".join(json.dumps(d.to_dict(flatten=flatten)) + "\n" for d in documents), encoding="utf-8")
    return path


@pytest.mark.parametrize("flatten", [False, True])
def test_haystack_documents_keep_their_ids_and_meta(tmp_path, caplog, flatten):
    from haystack import Document

    documents = [
        Document(id="doc-1", content="The Nile flows north.", meta={"title": "Rivers", "page": 3}),
        Document(content="Mozart was born in Salzburg."),  # Haystack's own id, no title
        Document(id="blank", content="  ", meta={"title": "Empty"}),
        Document(id="image", content=None, meta={"file_path": "a.png"}),
    ]
    path = haystack_jsonl(tmp_path / "docs.jsonl", documents, flatten)
    ds = data.load_dataset(str(path))
    assert [d.id for d in ds.documents] == ["doc-1", documents[1].id]
    assert [d.content for d in ds.documents] == ["The Nile flows north.", "Mozart was born in Salzburg."]
    assert ds.documents[0].meta == {"title": "Rivers", "page": 3, "doc_id": "doc-1"}
    assert ds.documents[1].meta == {"title": "", "doc_id": documents[1].id}
    assert ds.queries == [] and ds.meta == {"skipped_empty_documents": 2}
    assert "docs.jsonl: skipped 2 documents with empty content" in caplog.text
    assert [d.id for d in data.load_corpus(str(path))] == ["doc-1", documents[1].id]
    beir = tmp_path / "beir"  # a BEIR folder whose corpus.jsonl holds Haystack documents
    beir.mkdir()
    haystack_jsonl(beir / "corpus.jsonl", documents, flatten)
    assert [d.id for d in data.load_corpus(str(beir))] == ["doc-1", documents[1].id]


def test_haystack_documents_that_are_all_empty_or_malformed_are_one_line(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "a", "content": ""}\n{"id": "b", "content": null}\n', encoding="utf-8")
    with pytest.raises(DistillError, match=r"docs.jsonl holds no records but 2 documents with empty content$"):
        data.load_corpus(str(path))
    for line, message in (
        ('{"id": "a", "content": 7}', "line 1: field 'content' must be text, got int"),
        ('{"id": "a", "content": "x", "meta": [1]}', "line 1: field 'meta' must be a mapping, got list"),
        ('{"id": [1], "content": "x"}', "line 1: field 'id' must be text or a number, got list"),
    ):
        path.write_text(line + "\n", encoding="utf-8")
        with pytest.raises(DistillError, match=message):
            data.load_jsonl(path)


@pytest.mark.slow
def test_real_squad_dev_and_train():
    dev = data.load_squad("dev")
    assert (len(dev.documents), len(dev.queries)) == (2067, 10570)
    assert len({d.meta["title"] for d in dev.documents}) == 48
    train = data.load_squad("train")
    assert (len(train.documents), len(train.queries)) == (18896, 87599)
    sample = dev.subset(questions=2000, seed=0)
    assert len(sample.queries) == 2000 and len(sample.documents) == 2067


def _beir(folder, qrels: str):
    (folder / "qrels").mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "alpha"}\n{"_id": "d2", "text": "beta"}\n')
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "which alpha?"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return folder


def test_qrels_naming_passages_outside_the_corpus_are_an_error(tmp_path):
    _beir(tmp_path, "q1\td1\t1\nq1\td9\t1\n")
    with pytest.raises(DistillError, match=r"1 relevant corpus ids are not in corpus.jsonl \(e.g. \['d9'\]\)"):
        data.load_beir(tmp_path)


def test_the_fingerprint_of_judgements_tells_other_qrels_apart(tmp_path):
    one = data.load_beir(_beir(tmp_path / "a", "q1\td1\t1\n"))
    other = data.load_beir(_beir(tmp_path / "b", "q1\td2\t1\n"))
    assert one.fingerprint() == other.fingerprint()  # same texts: older reports still merge on it
    assert one.summary()["judgements"] != other.summary()["judgements"]
    assert one.judgements_fingerprint() == data.load_beir(tmp_path / "a").judgements_fingerprint()


def test_files_that_are_not_utf8_or_not_files_are_one_line_errors(tmp_path):
    (tmp_path / "latin1.json").write_bytes('{"data": [{"title": "Caf\xe9"}]}'.encode("latin-1"))
    with pytest.raises(DistillError, match=r"latin1.json is not UTF-8 text \(byte 24: b'\\xe9'\): save it as UTF-8"):
        data.load_squad_file(tmp_path / "latin1.json")
    beir = _beir(tmp_path / "beir", "q1\td1\t1\n")
    (beir / "corpus.jsonl").write_bytes(b'{"_id": "d1", "text": "caf\xe9"}\n')
    with pytest.raises(DistillError, match="corpus.jsonl is not UTF-8 text"):
        data.load_beir(beir)
    _beir(beir, "q1\td1\t1\n")
    (beir / "qrels" / "test.tsv").write_bytes(b"q1\td1\t1\n\xff\n")
    with pytest.raises(DistillError, match="test.tsv is not UTF-8 text"):
        data.load_beir(beir)
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(DistillError, match="folder.jsonl is a folder, not a file"):
        data.load_jsonl(tmp_path / "folder.jsonl")


def test_beir_keeps_grades_and_the_judgements_fingerprint_covers_them(tmp_path):
    graded = data.load_beir(write_judged_beir(tmp_path / "graded", "q1\tA\t2\nq1\tB\t1\nq1\tC\t0\n"), "dev")
    (q,) = graded.queries
    assert q.gold_doc_ids == ("A", "B") and q.grades == (2.0, 1.0) and q.gold_grades() == (2.0, 1.0)
    binary = data.load_beir(write_judged_beir(tmp_path / "binary", "q1\tA\t1\nq1\tB\t1\n"), "dev")
    assert binary.queries[0].grades == () and binary.queries[0].gold_grades() == (1.0, 1.0)
    assert graded.fingerprint() == binary.fingerprint()  # same texts
    assert graded.judgements_fingerprint() != binary.judgements_fingerprint()
    # Binary judgements hash as before grades existed, so older reports still merge.
    old = data.hashlib.sha256(json.dumps(["q1", ("A", "B"), (), ()]).encode()).hexdigest()[:16]
    assert binary.judgements_fingerprint() == old


def test_beir_folder_without_qrels_is_an_unlabelled_corpus(tmp_path):
    ds = data.load_beir(write_judged_beir(tmp_path / "corpus", None), "dev")
    assert len(ds.documents) == 3 and [(q.id, q.gold_doc_ids) for q in ds.queries] == [("q1", ())]
    (tmp_path / "corpus" / "queries.jsonl").unlink()
    assert data.load_beir(tmp_path / "corpus").queries == []


def test_load_queries_from_text_counts_blank_lines_and_duplicates(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("what is a vitamin\n\n  \nwhat is a  vitamin\nstatins and muscles\n", encoding="utf-8")
    queries = data.load_queries(path)
    assert [(q.id, q.text, q.gold_doc_ids) for q in queries] == [
        ("q1", "what is a vitamin", ()),
        ("q5", "statins and muscles", ()),
    ]
    assert queries.blank_lines == 2 and queries.duplicates == 1
    assert queries.summary() == (
        f"2 queries from {path} (2 blank lines skipped, 1 duplicates dropped, 0 lines not UTF-8 skipped)"
    )


def test_a_query_log_with_lines_that_are_not_utf8_skips_and_counts_them(tmp_path, caplog):
    path = tmp_path / "log.txt"
    path.write_bytes(b"\xef\xbb\xbfwhat is a vitamin\ncaf\xe9 au lait prices\nstatins and muscles\n\xff\xfe\n")
    with caplog.at_level("WARNING"):
        queries = data.load_queries(path)
    assert [(q.id, q.text) for q in queries] == [("q1", "what is a vitamin"), ("q3", "statins and muscles")]
    assert queries.not_utf8 == 2 and queries.blank_lines == 0  # counted apart from blank lines
    assert "skipped 2 lines that are not UTF-8 text (lines 2, 4)" in caplog.text


def test_load_queries_from_jsonl_and_beir_queries(tmp_path):
    path = tmp_path / "queries.jsonl"
    rows = [{"_id": "PLAIN-1", "text": "a"}, {"id": 7, "question": "b"}, {"query": "c"}, {"text": ""}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    queries = data.load_queries(path)
    assert [(q.id, q.text) for q in queries] == [("PLAIN-1", "a"), ("7", "b"), ("q3", "c")]
    assert queries.blank_lines == 1
    sniffed = tmp_path / "queries.txt"  # JSON lines are read as such whatever the file is called
    sniffed.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    assert [q.id for q in data.load_queries(sniffed)] == ["PLAIN-1", "7", "q3"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "holds no queries"),
        (b"\n \n", "holds no queries"),
        (b"caf\xe9 au lait\n", r"is not UTF-8 text \(byte 3"),  # no line of it is: the file is refused
        (b'{"title": "x"}\n', "line 1 needs a 'text', 'query' or 'question' field"),
        (b'{"text": 3}\n', "line 1: field 'text' must be a string"),
        (b'{"id": 1, "text": "a"}\n{"id": 1, "text": "b"}\n', "line 2 repeats the id '1' of line 1"),
    ],
)
def test_bad_query_files_are_one_line(tmp_path, content, message):
    path = tmp_path / "queries.jsonl" if content.startswith(b"{") else tmp_path / "queries.txt"
    path.write_bytes(content)
    with pytest.raises(DistillError, match=message) as err:
        data.load_queries(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    with pytest.raises(DistillError, match="does not exist"):
        data.load_queries(tmp_path / "none.txt")


def test_with_queries_keeps_the_corpus_and_says_where_the_queries_came_from(tiny_squad, tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("who wrote it\n\nwho wrote it\n", encoding="utf-8")
    squad = data.load_squad_file(tiny_squad)
    asked = data.with_queries(squad, data.load_queries(path))
    assert asked.documents == squad.documents and [q.text for q in asked.queries] == ["who wrote it"]
    assert asked.meta == {"queries": str(path), "blank_query_lines": 1, "duplicate_queries": 1}
    assert asked.fingerprint() != squad.fingerprint()
