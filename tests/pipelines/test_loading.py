import contextlib
import copy
from pathlib import Path

import pytest
from haystack import Pipeline

from distill.errors import DistillError
from distill.pipelines import loading as pipelines
from distill.pipelines.haystack_yaml import parse_pipeline_yaml

REPO = Path(__file__).resolve().parents[2]


def _diff(a, b, path=""):
    """Paths of the leaves where two nested dicts differ."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += _diff(a.get(key), b.get(key), f"{path}.{key}" if path else key)
        return out
    return [] if a == b else [path]


@pytest.mark.parametrize("name", ["indexing", "retrieval", "extractive_qa"])
def test_committed_yaml_is_what_the_library_builds_and_plain_haystack_loads_it(name):
    text = (REPO / "pipelines" / f"{name}.yaml").read_text()
    built = pipelines.build_default_pipelines()[name]
    assert parse_pipeline_yaml(text, name) == parse_pipeline_yaml(built, name)
    pipeline = Pipeline.loads(text)  # plain Haystack, default allowlist
    assert isinstance(pipeline, Pipeline)
    assert "sentence-transformers/all-mpnet-base-v2" in text


def test_yaml_round_trip_keeps_every_setting(tiny_pipelines):
    for path in tiny_pipelines.glob("*.yaml"):
        data = pipelines.read_pipeline_dict(path)
        reloaded = parse_pipeline_yaml(pipelines.load_pipeline(data).dumps(), path.name)
        by_receiver = lambda conns: sorted(conns, key=lambda c: c["receiver"])  # noqa: E731
        assert by_receiver(reloaded.pop("connections")) == by_receiver(data["connections"])
        expected = {
            k: v for k, v in pipelines.resolve_models(pipelines.fit_devices(data)).items() if k != "connections"
        }
        assert _diff(expected, pipelines.fit_devices(reloaded)) == []


def test_swap_changes_only_model_and_index(tiny_pipelines, tiny_embedder_wide):
    for name in ("indexing", "retrieval", "extractive_qa"):
        teacher = pipelines.read_pipeline_dict(tiny_pipelines / f"{name}.yaml")
        student = pipelines.swap(teacher, model=str(tiny_embedder_wide))
        changed = _diff(teacher, student)
        assert changed, name
        for path in changed:
            assert path.endswith(".init_parameters.model") or path.endswith("document_store.init_parameters.index")
        assert any(p.endswith(".init_parameters.model") for p in changed)
        assert any(p.endswith(".index") for p in changed)
        # The reader keeps the teacher's model when an embedder is swapped.
        if name == "extractive_qa":
            assert student["components"]["reader"] == teacher["components"]["reader"]


def test_swap_reader_and_query_only(tiny_pipelines, tiny_reader, tiny_embedder_wide):
    qa = pipelines.read_pipeline_dict(tiny_pipelines / "extractive_qa.yaml")
    swapped = pipelines.swap(qa, model=str(tiny_reader) + "/", reader_scores="raw")
    assert _diff(qa, swapped) == ["components.reader.init_parameters.model"]
    # The default: the same reader served by the margin reader (spans over their window's no-answer logits).
    margin = pipelines.swap(qa, model=str(tiny_reader) + "/")
    assert _diff(qa, margin) == ["components.reader.init_parameters.model", "components.reader.type"]
    assert margin["components"]["reader"]["type"] == "distill.components.readers.NoAnswerMarginExtractiveReader"
    loaded = pipelines.load_pipeline(margin).get_component("reader")
    assert type(loaded).__name__ == "NoAnswerMarginExtractiveReader" and loaded.no_answer
    from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

    from distill.cli import build_parser
    from distill.components.readers import NoAnswerMarginExtractiveReader

    def path(cls):
        return f"{cls.__module__}.{cls.__name__}"

    assert pipelines.READER_TYPES == {
        "margin": path(NoAnswerMarginExtractiveReader),
        "raw": path(TransformersExtractiveReader),
    }
    # The CLI spells the choices out (importing pipelines there would load Haystack): the same ones, the same default.
    swap_args = ["swap", "extractive_qa.yaml", "--out", "out"]
    assert build_parser().parse_args(swap_args).reader_scores == pipelines.DEFAULT_READER_SCORES
    for choice in pipelines.READER_TYPES:
        assert build_parser().parse_args([*swap_args, "--reader-scores", choice]).reader_scores == choice
    with pytest.raises(SystemExit):
        build_parser().parse_args([*swap_args, "--reader-scores", "softmax"])
    assert pipelines.swap(margin, model=str(tiny_reader), reader_scores="raw")["components"]["reader"]["type"] == (
        path(TransformersExtractiveReader)
    )
    other = copy.deepcopy(qa)
    other["components"]["reader"]["type"] = "my_package.readers.MyExtractiveReader"  # a reader class of the user's
    assert pipelines.swap(other, model=str(tiny_reader))["components"]["reader"]["type"] == (
        "my_package.readers.MyExtractiveReader"
    )
    with pytest.raises(DistillError, match="reader scores must be one of"):
        pipelines.swap(qa, model=str(tiny_reader), reader_scores="softmax")
    query_only = pipelines.swap(qa, model=str(tiny_embedder_wide), components=["text_embedder"], keep_index=True)
    assert _diff(qa, query_only) == ["components.text_embedder.init_parameters.model"]
    with pytest.raises(DistillError, match="no component named"):
        pipelines.swap(qa, model=str(tiny_reader), components=["nope"])


def test_offline_source_is_written_as_its_hub_id(tiny_pipelines):
    data = pipelines.read_pipeline_dict(tiny_pipelines / "retrieval.yaml")
    swapped = pipelines.swap(data, model="minilm-l6", components=["text_embedder"])
    assert (
        swapped["components"]["text_embedder"]["init_parameters"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    )


def test_class_outside_the_allowlist_is_refused(tiny_pipelines):
    data = pipelines.read_pipeline_dict(tiny_pipelines / "retrieval.yaml")
    data["components"]["retriever"]["type"] = "os.system"
    with pytest.raises(DistillError, match="allowlist|not allowed|trusted"):
        pipelines.load_pipeline(data)


def test_devices_from_another_machine_are_dropped(tiny_pipelines):
    data = pipelines.read_pipeline_dict(tiny_pipelines / "extractive_qa.yaml")
    data["components"]["text_embedder"]["init_parameters"]["device"] = {"type": "single", "device": "cuda:3"}
    data["components"]["reader"]["init_parameters"]["model_kwargs"] = {"device_map": "cuda:3", "torch_dtype": "auto"}
    fitted = pipelines.fit_devices(data)
    assert fitted["components"]["text_embedder"]["init_parameters"]["device"] is None
    assert fitted["components"]["reader"]["init_parameters"]["model_kwargs"] == {"torch_dtype": "auto"}
    pipelines.load_pipeline(data)  # loads here, on the CPU


@pytest.mark.parametrize(
    "text, message",
    [
        (None, "does not exist"),
        ("components: [\n", r"not valid YAML: expected the node content, but found '<stream end>' at line 2, column 1"),
        ("connections: []\n", "non-empty 'components'"),
        (b"components: {caf\xe9: {}}\n", r"pipeline.yaml is not UTF-8 text \(byte 16"),
    ],
)
def test_bad_yaml_files(tmp_path, text, message):
    path = tmp_path / "pipeline.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    elif text is not None:
        path.write_text(text)
    with pytest.raises(DistillError, match=message) as error:
        pipelines.read_pipeline_dict(path)
    assert "\n" not in str(error.value)


def test_swap_files_keeps_indexing_of_a_query_only_student(tiny_pipelines, tiny_embedder_wide, tmp_path):
    paths = [tiny_pipelines / "indexing.yaml", tiny_pipelines / "retrieval.yaml"]
    written = pipelines.swap_files(
        paths, tmp_path, model=str(tiny_embedder_wide), components=["text_embedder"], keep_index=True
    )
    assert [p.name for p in written] == ["indexing.yaml", "retrieval.yaml"]
    assert pipelines.read_pipeline_dict(written[0]) == pipelines.read_pipeline_dict(paths[0])


def test_fast_retriever_copy_changes_only_the_retriever_type(tiny_pipelines, tmp_path):
    paths = [tiny_pipelines / "indexing.yaml", tiny_pipelines / "retrieval.yaml"]
    written = pipelines.swap_files(paths, tmp_path, model=None, fast_retriever=True)
    assert pipelines.read_pipeline_dict(written[0]) == pipelines.read_pipeline_dict(paths[0])
    before, after = pipelines.read_pipeline_dict(paths[1]), pipelines.read_pipeline_dict(written[1])
    assert _diff(before, after) == ["components.retriever.type"]
    assert after["components"]["retriever"]["type"] == "distill.components.retrievers.FastInMemoryEmbeddingRetriever"
    pipelines.load_pipeline(written[1])


def test_default_index_tells_trained_students_apart(tmp_path, tiny_pipelines):
    data = pipelines.read_pipeline_dict(tiny_pipelines / "retrieval.yaml")
    indexes = set()
    for run in ("response", "relation"):
        folder = tmp_path / run / "student"
        folder.mkdir(parents=True)
        (folder / "modules.json").write_text("[]")
        swapped = pipelines.swap(data, model=str(folder), components=["text_embedder"])
        indexes.add(swapped["components"]["retriever"]["init_parameters"]["document_store"]["init_parameters"]["index"])
    assert indexes == {"student-response-student", "student-relation-student"}
    # `distill train` writes OUTPUT/student, and OUTPUT is often called `run`: two runs must still differ.
    for run in ("lr1e4", "anchor"):
        folder = tmp_path / run / "run" / "student"
        folder.mkdir(parents=True)
        (folder / "modules.json").write_text("[]")
        swapped = pipelines.swap(data, model=str(folder), components=["text_embedder"])
        indexes.add(swapped["components"]["retriever"]["init_parameters"]["document_store"]["init_parameters"]["index"])
    assert {"student-lr1e4-run-student", "student-anchor-run-student"} < indexes


def test_a_swapped_yaml_names_the_student_relative_to_itself_and_loads_from_another_folder(
    tmp_path, monkeypatch, tiny_pipelines, tiny_embedder_wide
):
    import shutil

    shutil.copytree(tiny_embedder_wide, tmp_path / "runs" / "students" / "x" / "student")
    monkeypatch.chdir(tmp_path)
    (written,) = pipelines.swap_files(
        [tiny_pipelines / "retrieval.yaml"], Path("runs/swapped/x"), model="runs/students/x/student"
    )
    text = written.read_text()
    assert text.startswith(pipelines.RELATIVE_PATHS_NOTE)
    written_model = parse_pipeline_yaml(text, "x")["components"]["text_embedder"]["init_parameters"]["model"]
    assert written_model == "../../students/x/student"
    # Read from the repository root, the path is the one written before paths were relative to their file.
    assert pipelines.read_pipeline_dict(written)["components"]["text_embedder"]["init_parameters"]["model"] == (
        "runs/students/x/student"
    )
    assert Pipeline.loads(text)  # the header comment is plain YAML to Haystack
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    pipeline = pipelines.load_pipeline(tmp_path / written)
    pipeline.warm_up()
    result = pipeline.run({"text_embedder": {"text": "Where was Mozart born?"}})
    assert result["retriever"]["documents"] == []  # nothing indexed; the student embedded the question


def test_a_relative_model_not_beside_the_yaml_is_read_from_the_working_directory(
    tmp_path, monkeypatch, tiny_reader, tiny_embedder
):
    import shutil

    shutil.copytree(tiny_reader, tmp_path / "runs" / "reader-teacher")
    (tmp_path / "pipelines").mkdir()
    text = pipelines.build_default_pipelines(embedder=str(tiny_embedder))["extractive_qa"]
    (tmp_path / "pipelines" / "extractive_qa.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    data = pipelines.read_pipeline_dict("pipelines/extractive_qa.yaml")
    assert data == parse_pipeline_yaml(text, "x")  # the committed YAMLs name runs/reader-teacher from the repo root
    assert pipelines.resolve_models(data)["components"]["reader"]["init_parameters"]["model"] == "runs/reader-teacher"


EVIL = """
import pathlib

from transformers import BertConfig

pathlib.Path(__file__).resolve().parent.joinpath("{marker}").write_text("ran")  # the code a pipeline file smuggles in


class EvilConfig(BertConfig):
    model_type = "bert"
"""


def _remote_code_pipeline(tmp_path: Path, tiny_pipelines: Path, tiny_embedder: Path, where: str) -> tuple[Path, Path]:
    import json
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_embedder, model)
    marker = tmp_path / "marker"
    config = json.loads((model / "config.json").read_text())
    (model / "config.json").write_text(json.dumps(config | {"auto_map": {"AutoConfig": "evil.EvilConfig"}}))
    (model / "evil.py").write_text(EVIL.replace("{marker}", str(marker)))
    data = pipelines.read_pipeline_dict(tiny_pipelines / "retrieval.yaml")
    params = data["components"]["text_embedder"]["init_parameters"]
    params["model"] = str(model)
    if where == "top":
        params["trust_remote_code"] = True
    else:
        params[where] = {"trust_remote_code": True}
    path = tmp_path / "retrieval.yaml"
    path.write_text(pipelines.dump_pipeline_dict(data))
    return path, marker


@pytest.mark.parametrize("where", ["top", "model_kwargs", "tokenizer_kwargs", "config_kwargs"])
def test_a_pipeline_file_cannot_turn_on_remote_code(tmp_path, tiny_pipelines, tiny_embedder, where):
    path, marker = _remote_code_pipeline(tmp_path, tiny_pipelines, tiny_embedder, where)
    with pytest.raises(DistillError) as refused:
        pipelines.load_pipeline(path)
    message = str(refused.value)
    assert "\n" not in message and "component 'text_embedder' sets init_parameters." in message
    assert "--trust-remote-code" in message and not marker.exists()


def test_remote_code_runs_only_when_the_user_says_so(tmp_path, tiny_pipelines, tiny_embedder):
    path, marker = _remote_code_pipeline(tmp_path, tiny_pipelines, tiny_embedder, "top")
    with pipelines.trusting_remote_code():
        pipeline = pipelines.load_pipeline(path)
        with contextlib.suppress(Exception):  # the smuggled config need not make a working model: it ran, that counts
            pipeline.warm_up()
    assert marker.read_text() == "ran"  # what the refusal above prevents is real
    with pytest.raises(DistillError, match="trust-remote-code"):
        pipelines.load_pipeline(path)  # the opt-in ends with its block


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d["connections"].append({"sender": "nowhere.documents", "receiver": "retriever.query"}), "nowhere"),
        (lambda d: d["components"]["retriever"].update(type="builtins.eval"), "retriever"),
        (lambda d: d["components"]["retriever"].update(type="distill.errors.DistillError"), "retriever"),
    ],
)
def test_pipelines_haystack_cannot_build_are_one_line_errors(tmp_path, tiny_pipelines, edit, message):
    data = pipelines.read_pipeline_dict(tiny_pipelines / "retrieval.yaml")
    edit(data)
    with pytest.raises(DistillError) as refused:
        pipelines.pipeline_from_dict(data, name="bad.yaml")
    assert "\n" not in str(refused.value) and str(refused.value).startswith("bad.yaml")
    assert message in str(refused.value)


def _store(data):
    return data["components"]["retriever"]["init_parameters"]["document_store"]


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d: d["components"]["retriever"].update(type="os.system"), ["'retriever'", "'os.system'", "allowlist"]),
        (lambda d: d["components"]["retriever"].update(type="subprocess.Popen"), ["'subprocess.Popen'", "allowlist"]),
        (lambda d: _store(d).update(type="os.system"), ["'retriever'", "'os.system'", "allowlist"]),
        (lambda d: _store(d).update(type="builtins.eval"), ["'retriever'", "builtins.eval", "not a type"]),
        (lambda d: d["components"]["retriever"].update(type="builtins.eval"), ["'builtins.eval'", "not a Haystack"]),
        (
            lambda d: d["components"]["retriever"].update(type="distill.errors.DistillError"),
            ["'retriever'", "'distill.errors.DistillError'", "not a Haystack component class", "class path"],
        ),
        (
            lambda d: d["components"]["retriever"].update(type="distill.common.files.read_text"),
            ["not a Haystack component"],
        ),
        (lambda d: d["components"]["retriever"].update(type="eval"), ["'retriever'", "class path", "'eval'"]),
        (lambda d: d["components"]["retriever"].update(type=5), ["'retriever'", "class path"]),
        (lambda d: d["components"]["retriever"].pop("type"), ["'retriever'", "needs a 'type'"]),
        (lambda d: d["components"].update(retriever=[1]), ["'retriever' must be a mapping", "got a list"]),
        (lambda d: d["components"]["retriever"].update(init_parameters=[1]), ["init_parameters must be a mapping"]),
        (lambda d: d["components"]["retriever"]["init_parameters"].update(bogus=1), ["'retriever'", "bogus"]),
        (lambda d: d["components"]["text_embedder"]["init_parameters"].update(token={"type": "os.system"}), ["'os'"]),
        (lambda d: d.update(connections=None), ["connections must be a list"]),
        (lambda d: d["connections"][0].update(sender=5), ["connections[0]", "sender"]),
    ],
)
def test_refused_types_and_bad_shapes_are_one_self_sufficient_line(
    tmp_path, tiny_pipelines, tiny_squad, capsys, edit, words
):
    from distill import cli

    data = pipelines.read_pipeline_dict(tiny_pipelines / "retrieval.yaml")
    edit(data)
    (tmp_path / "retrieval.yaml").write_text(pipelines.dump_pipeline_dict(data))
    (tmp_path / "indexing.yaml").write_bytes((tiny_pipelines / "indexing.yaml").read_bytes())
    out = tmp_path / "eval"
    assert cli.main(["eval", f"a={tmp_path / 'retrieval.yaml'}", "--data", str(tiny_squad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "retrieval.yaml") in err, err
    for word in words:
        assert word in err, (word, err)
    assert "unsafe=True" not in err and not err.rstrip().endswith(":")
    assert not out.exists()


def test_a_null_init_parameters_swaps_like_an_empty_one(tiny_pipelines, tiny_embedder_wide):
    """Found by tests/test_fuzz.py: `distill swap` raised a TypeError on `init_parameters: null`."""
    data = pipelines.read_pipeline_dict(tiny_pipelines / "indexing.yaml")
    data["components"]["document_embedder"]["init_parameters"] = None
    with pytest.raises(DistillError, match="component 'document_embedder' has no 'model' parameter to swap"):
        pipelines.swap(data, model=str(tiny_embedder_wide), components=["document_embedder"])


@pytest.mark.parametrize("runs", [None, "x", 0, True])
def test_max_runs_per_component_must_be_a_positive_number(tiny_pipelines, runs):
    """Found by tests/test_fuzz.py: a null max_runs_per_component loaded, then failed with a TypeError at the run."""
    data = pipelines.read_pipeline_dict(tiny_pipelines / "retrieval.yaml")
    data["max_runs_per_component"] = runs
    with pytest.raises(DistillError, match="max_runs_per_component must be a positive whole number"):
        pipelines.load_pipeline(data)


def test_named_parts_reach_past_generic_folder_names():
    from distill.common.outputs import named_parts

    assert named_parts(Path("runs/students/minilm")) == ["minilm"]
    assert named_parts(Path("runs/adapt/mine/run")) == ["mine", "run"]
    assert named_parts(Path("runs/adapt/mine/run/student")) == ["mine", "run", "student"]
    assert named_parts(Path("run")) == ["run"]
