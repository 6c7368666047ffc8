"""A query pipeline's retrieval part and its scored list, chosen on purpose: RAG, hybrid, rankers, readers, and the
query pipelines distill refuses in one line. Nothing here loads a model (components are only built, never warmed)."""

from pathlib import Path

import pytest
from haystack import Document, Pipeline
from haystack.components.builders import AnswerBuilder, ChatPromptBuilder, PromptBuilder
from haystack.components.generators.chat import OpenAIChatGenerator
from haystack.components.joiners import DocumentJoiner
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever, InMemoryEmbeddingRetriever
from haystack.dataclasses import ChatMessage
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack_integrations.components.embedders.sentence_transformers import SentenceTransformersTextEmbedder

from distill.errors import DistillError
from distill.pipelines.haystack_yaml import parse_pipeline_yaml
from distill.pipelines.loading import declares_output, fit_devices, is_generator, read_pipeline_dict, resolve_models
from distill.pipelines.retrieval import prompt_builder, render_prompt, retrieval_part
from distill.pipelines.user import UserPipeline

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TEMPLATE = "{% for d in documents %}[{{ d.content }}]{% endfor %} Q: {{ query }}"


@pytest.fixture(autouse=True)
def no_openai_key(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def example(name: str) -> UserPipeline:
    path = EXAMPLES / name / "query.yaml"
    return UserPipeline.parse(path, read_pipeline_dict(path))


def user(pipeline: Pipeline, name: str = "query.yaml") -> UserPipeline:
    """What a user's file of ``pipeline`` reads as (Pipeline.dumps, read as distill reads files)."""
    return UserPipeline.parse(Path(name), parse_pipeline_yaml(pipeline.dumps(), name))


def hybrid(*, prompt: bool = True, models: tuple[str, ...] = ("m",), keyword: bool = True) -> Pipeline:
    """text embedder(s) -> embedding retriever(s) [+ BM25] -> joiner [-> prompt builder -> generator]."""
    store = InMemoryDocumentStore(index="unit")
    p = Pipeline()
    for i, model in enumerate(models):
        p.add_component(f"text_embedder{i or ''}", SentenceTransformersTextEmbedder(model=model))
        p.add_component(f"embedding_retriever{i or ''}", InMemoryEmbeddingRetriever(document_store=store))
    p.add_component("joiner", DocumentJoiner(join_mode="reciprocal_rank_fusion"))
    if keyword:
        p.add_component("bm25_retriever", InMemoryBM25Retriever(document_store=store))
        p.connect("bm25_retriever.documents", "joiner.documents")
    for i in range(len(models)):
        p.connect(f"text_embedder{i or ''}.embedding", f"embedding_retriever{i or ''}.query_embedding")
        p.connect(f"embedding_retriever{i or ''}.documents", "joiner.documents")
    if prompt:
        template = [ChatMessage.from_user(TEMPLATE)]
        p.add_component(
            "prompt_builder", ChatPromptBuilder(template=template, required_variables=("query", "documents"))
        )
        p.add_component("llm", OpenAIChatGenerator(model="gpt-4o-mini"))
        p.connect("joiner.documents", "prompt_builder.documents")
        p.connect("prompt_builder.prompt", "llm.messages")
    return p


def test_the_rag_example_scores_what_enters_the_prompt_and_the_embedding_list_beside_it():
    pipeline = example("rag")
    part = retrieval_part(pipeline, require_embedding=True)
    assert (part.scored, part.scored_role, part.into) == ("joiner", "joiner", "prompt_builder")
    assert part.embedding == "embedding_retriever" and set(part.upstream) == {"text_embedder", "embedding_retriever"}
    assert part.pruned == ("llm", "prompt_builder") and part.reader is None
    assert (part.prompt_documents, part.prompt_question) == ("documents", ("query",))
    # the rest exactly as written: the same component dicts, every connection between them
    kept = pipeline.data["components"]
    assert part.data["components"] == {
        n: kept[n] for n in ("bm25_retriever", "embedding_retriever", "joiner", "text_embedder")
    }
    assert all(part.data["components"][n] is kept[n] for n in part.data["components"])
    assert len(part.data["connections"]) == 3 and part.data["max_runs_per_component"] == 100
    assert "'joiner' sends into 'prompt_builder'" in part.describe() and "'embedding_retriever'" in part.describe()


def test_a_haystack_2_generator_that_does_not_exist_any_more_is_left_out_as_well():
    part = retrieval_part(example("rag-2x"))
    assert (
        part.scored == "joiner" and part.pruned == ("llm", "prompt_builder") and part.embedding == "embedding_retriever"
    )


def test_the_projects_own_pipelines_are_built_as_written(tiny_pipelines):
    for name, reader in (("retrieval", None), ("extractive_qa", "reader")):
        path = tiny_pipelines / f"{name}.yaml"
        pipeline = UserPipeline.parse(path, read_pipeline_dict(path))
        part = retrieval_part(pipeline, require_embedding=True)
        assert part.data is pipeline.data and part.pruned == ()  # nothing copied, nothing left out
        assert (part.scored, part.scored_role, part.into, part.embedding) == ("retriever", "retriever", reader, None)
        assert part.reader == reader and part.upstream == ()


def test_a_ranker_after_the_joiner_is_the_last_list_and_the_embedding_list_is_scored_beside_it():
    part = retrieval_part(example("haystack-tutorials/hybrid-retrieval"))
    assert (part.scored, part.scored_role, part.into, part.embedding) == (
        "ranker",
        "ranker",
        None,
        "embedding_retriever",
    )
    assert part.pruned == () and part.prompt_builder is None
    rag = retrieval_part(example("haystack-tutorials/hybrid-rag"))
    # the AnswerBuilder takes the generator's replies: left out with it, though the ranker feeds it too
    assert rag.scored == "ranker" and rag.into == "prompt_builder"
    assert rag.pruned == ("answer_builder", "llm", "prompt_builder")


def test_what_only_feeds_or_follows_the_generator_is_left_out_and_nothing_else():
    p = hybrid()
    p.add_component("answer_builder", AnswerBuilder())
    p.connect("llm.replies", "answer_builder.replies")
    p.connect("joiner.documents", "answer_builder.documents")
    p.remove_component("prompt_builder")
    template = [ChatMessage.from_user(TEMPLATE + "{% for m in memories %}{{ m.content }}{% endfor %}")]
    p.add_component("prompt_builder", ChatPromptBuilder(template=template, required_variables=("query", "documents")))
    p.add_component("memory", DocumentJoiner())  # stands for anything that only fills the prompt
    p.connect("joiner.documents", "prompt_builder.documents")
    p.connect("memory.documents", "prompt_builder.memories")
    p.connect("prompt_builder.prompt", "llm.messages")
    part = retrieval_part(user(p))
    assert set(part.pruned) == {"llm", "answer_builder", "prompt_builder", "memory"}
    assert part.scored == "joiner" and "memory" not in part.data["components"]
    assert {"text_embedder", "embedding_retriever", "bm25_retriever", "joiner"} == set(part.data["components"])


def test_a_bm25_only_pipeline_is_refused_where_a_teacher_is_distilled_and_scored_as_a_baseline_elsewhere():
    store = InMemoryDocumentStore(index="unit")
    p = Pipeline()
    p.add_component("bm25_retriever", InMemoryBM25Retriever(document_store=store))
    with pytest.raises(DistillError) as e:
        retrieval_part(user(p), require_embedding=True)
    message = str(e.value)
    assert "\n" not in message and "'bm25_retriever' (InMemoryBM25Retriever) ranks by keywords" in message
    assert "add a SentenceTransformersTextEmbedder feeding an embedding retriever" in message
    assert retrieval_part(user(p)).scored == "bm25_retriever"


def test_two_text_embedders_are_refused_naming_both():
    p = hybrid(keyword=False, models=("m", "m"))
    with pytest.raises(DistillError, match=r"2 text embedders \('text_embedder' \(m\), 'text_embedder1' \(m\)\)"):
        retrieval_part(user(p))


def test_a_joiner_of_embedding_retrievers_of_different_models_is_refused_naming_the_joiner():
    p = hybrid(models=("teacher-a", "teacher-b"))
    with pytest.raises(DistillError) as e:
        retrieval_part(user(p))
    message = str(e.value)
    assert "component 'joiner' joins embedding retrievers of different models" in message
    assert "'embedding_retriever' (teacher-a), 'embedding_retriever1' (teacher-b)" in message


def test_a_prompt_that_needs_an_input_distill_cannot_give_is_refused():
    p = hybrid()
    template = [ChatMessage.from_user(TEMPLATE + " in {{ language }}")]
    builder = ChatPromptBuilder(template=template, required_variables=("query", "documents", "language"))
    p.remove_component("prompt_builder")
    p.add_component("prompt_builder", builder)
    p.connect("joiner.documents", "prompt_builder.documents")
    p.connect("prompt_builder.prompt", "llm.messages")
    with pytest.raises(DistillError) as e:
        retrieval_part(user(p))
    message = str(e.value)
    assert "component 'prompt_builder' (ChatPromptBuilder) requires prompt variable 'language'" in message
    assert "drop 'language' from its required_variables" in message and "\n" not in message


def test_a_retrieval_fed_by_a_generator_is_refused():
    p = hybrid(prompt=False)
    p.add_component("rewriter", OpenAIChatGenerator(model="gpt-4o-mini"))
    p.add_component("pick", PromptBuilder(template="{{ replies[0].text }}"))
    p.connect("rewriter.replies", "pick.replies")
    p.connect("pick.prompt", "text_embedder.text")
    with pytest.raises(DistillError, match="component 'pick' \\(PromptBuilder\\) feeds the retrieval \\('joiner'\\)"):
        retrieval_part(user(p))


def test_lists_that_are_never_joined_are_a_choice_distill_does_not_guess():
    store = InMemoryDocumentStore(index="unit")
    p = Pipeline()
    p.add_component("a", InMemoryBM25Retriever(document_store=store))
    p.add_component("b", InMemoryBM25Retriever(document_store=store))
    with pytest.raises(DistillError, match=r"components \['a', 'b'\] each end with a list of documents"):
        retrieval_part(user(p))
    # beside BM25 unjoined, the embedding retriever's list is the one a student changes: it is scored
    p = hybrid(prompt=False)
    p.remove_component("joiner")
    assert retrieval_part(user(p)).scored == "embedding_retriever"


def test_the_prompt_is_rendered_by_the_pipelines_own_builder_alone():
    documents = [Document(content="The Nile flows north."), Document(content="Mozart was born in Salzburg.")]
    part = retrieval_part(user(hybrid()))
    text = render_prompt(prompt_builder(part), part, "Where does the Nile flow?", documents)
    assert text == "user: [The Nile flows north.][Mozart was born in Salzburg.] Q: Where does the Nile flow?"
    tutorial = retrieval_part(example("haystack-tutorials/first-rag"))  # the question as {{question}}
    text = render_prompt(prompt_builder(tutorial), tutorial, "What does Rhodes Statue look like?", documents)
    assert "Question: What does Rhodes Statue look like?" in text and "The Nile flows north." in text
    old = retrieval_part(example("rag-2x"))  # a 2.x PromptBuilder (still in Haystack 3): plain text
    text = render_prompt(prompt_builder(old), old, "Where?", documents)
    assert text.startswith("Answer the question") and "Question: Where?" in text


def test_generators_are_found_by_name_class_path_or_replies_and_their_settings_left_alone():
    generator = "haystack.components.generators.chat.openai.OpenAIChatGenerator"
    assert declares_output(generator, "replies") and not declares_output("os.path.join", "replies")
    assert not declares_output("haystack.components.nowhere.Nothing", "replies")
    assert is_generator({"type": "haystack.components.generators.openai.OpenAIGenerator"})  # 2.x, gone in 3
    assert is_generator({"type": "haystack_integrations.components.generators.ollama.OllamaChatGenerator"})
    assert not is_generator({"type": "haystack.components.joiners.document_joiner.DocumentJoiner"})
    data = example("rag").data
    llm = data["components"]["llm"]
    assert resolve_models(data)["components"]["llm"] == llm  # gpt-4o-mini is no model folder: not resolved
    assert fit_devices(data)["components"]["llm"] == llm
