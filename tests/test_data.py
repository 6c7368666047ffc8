import json

import pytest

from distill import data
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
    with pytest.raises(DistillError, match="line 1 needs a 'passage'"):
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
