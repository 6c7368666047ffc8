"""A user's pair of pipelines read once: components by role under any names, their stores, the teacher's model, and
everything else kept as the file holds it."""

import yaml
from conftest import renamed_pipelines

from distill.pipelines.loading import read_pipeline_dict
from distill.pipelines.user import Store, read_user_pipelines


def test_roles_stores_and_the_teacher_under_the_users_own_names(home, tiny_pipelines, tiny_embedder):
    index_yaml, query_yaml = renamed_pipelines(tiny_pipelines, home / "mine")
    user = read_user_pipelines(str(index_yaml), str(query_yaml))
    assert user.indexing.path == index_yaml and user.query.path == query_yaml
    assert user.indexing.data == read_pipeline_dict(index_yaml) and user.query.data == read_pipeline_dict(query_yaml)
    assert dict(user.indexing.roles) == {"document_embedder": ("encode_docs",), "writer": ("save",)}
    assert dict(user.query.roles) == {"text_embedder": ("encode_q",), "retriever": ("find",)}
    assert user.query.named("reader") == () and user.indexing.rest == {} and user.query.rest == {}
    assert user.indexing.stores == (Store("save", "InMemoryDocumentStore", "users-own"),)
    assert user.query.stores == (Store("find", "InMemoryDocumentStore", "users-own"),)
    assert user.teacher_model == str(tiny_embedder)
    assert user.files == [(index_yaml, user.indexing.data), (query_yaml, user.query.data)]


def test_a_reader_is_a_role_and_an_unknown_component_is_kept_as_it_is(home, tiny_pipelines):
    qa = yaml.safe_load((tiny_pipelines / "extractive_qa.yaml").read_text())
    qa["components"]["tidy"] = {"type": "haystack.components.preprocessors.DocumentCleaner", "init_parameters": {}}
    (home / "qa.yaml").write_text(yaml.safe_dump(qa))
    user = read_user_pipelines(tiny_pipelines / "indexing.yaml", home / "qa.yaml")
    assert user.query.named("reader") == ("reader",) and user.query.named("retriever") == ("retriever",)
    assert user.query.rest == {"tidy": qa["components"]["tidy"]}


def test_no_teacher_model_unless_one_document_embedder_names_one(home, tiny_pipelines):
    index = yaml.safe_load((tiny_pipelines / "indexing.yaml").read_text())
    index["components"]["second"] = index["components"]["document_embedder"]
    (home / "two.yaml").write_text(yaml.safe_dump(index))
    assert read_user_pipelines(home / "two.yaml", tiny_pipelines / "retrieval.yaml").teacher_model is None
    query = tiny_pipelines / "retrieval.yaml"
    assert read_user_pipelines(query, query).teacher_model is None  # no document embedder at all
