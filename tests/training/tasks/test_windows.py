"""Reader windows, answer checks, span decoding and the cross-tokenizer mapping (tiny tokenizers built in the test)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from conftest import LONG, build_tokenizer, char_tokenizer, long_example

from distill.errors import DistillError
from distill.training.tasks.windows import (
    NO_TOKEN,
    ReaderExample,
    Windows,
    answer_positions,
    best_span,
    check_answer,
    decode_answers,
    make_windows,
    map_span_logits,
    map_teacher_probs,
    qa_scores,
    reader_examples,
)

# --- answers and examples ---------------------------------------------------------------------------------------------


def test_check_answer_keeps_a_correct_offset_and_corrects_or_skips_a_wrong_one():
    counts: Counter = Counter()
    context = "Mozart was born in Salzburg. Salzburg is in Austria."
    assert check_answer(context, "Salzburg", 19, "q1", strict=False, counts=counts) == 19
    assert not counts
    # Stated offset wrong: the nearest occurrence is used and counted.
    assert check_answer(context, "Salzburg", 27, "q2", strict=False, counts=counts) == 29
    assert counts["answer offset corrected"] == 1
    assert check_answer(context, "Vienna", 3, "q3", strict=False, counts=counts) is None
    assert counts["answer not in context"] == 1
    with pytest.raises(DistillError, match="question q4: answer 'Vienna' is not at its stated offset 3"):
        check_answer(context, "Vienna", 3, "q4", strict=True, counts=counts)
    with pytest.raises(DistillError, match="q5.*occurs at \\[19, 29\\]"):
        check_answer(context, "Salzburg", 0, "q5", strict=True, counts=counts)


def test_reader_examples_skip_and_count_empty_contexts(tiny_squad):
    from haystack import Document

    from distill.data.datasets import Query, load_squad_file

    data = load_squad_file(tiny_squad)
    data.documents.append(Document(id="empty", content="   "))
    queries = [*data.queries[:2], Query("qe", "Anything?", ("empty",), ("x",), (0,))]
    counts: Counter = Counter()
    examples = reader_examples(data, queries, labelled=True, counts=counts)
    assert [e.id for e in examples] == [q.id for q in data.queries[:2]]
    assert counts == {"empty context": 1}
    with pytest.raises(DistillError, match="question qe: its context is empty"):
        reader_examples(data, queries, labelled=True, strict=True)


# --- windows ----------------------------------------------------------------------------------------------------------


def test_long_context_becomes_overlapping_windows_and_labels_point_at_the_answer():
    tokenizer = build_tokenizer()
    ex = long_example("Salzburg")
    windows = make_windows(tokenizer, [ex], max_length=24, stride=8, max_query_length=8)
    assert len(windows) > 2  # a context longer than the model is cut into windows
    spans = [windows.context_span(w) for w in range(len(windows))]
    for (_, b0), (a1, _) in zip(spans, spans[1:]):
        assert a1 < b0  # consecutive windows overlap (stride)
    labelled = [w for w in range(len(windows)) if windows.start[w] > 0]
    assert labelled
    for w in labelled:
        a = windows.offsets[w][windows.start[w]][0]
        b = windows.offsets[w][windows.end[w]][1]
        assert LONG[a:b] == "Salzburg"
    # Windows that do not hold the whole answer point at position 0.
    for w in set(range(len(windows))) - set(labelled):
        assert windows.start[w] == windows.end[w] == 0
        a, b = windows.context_span(w)
        assert not (a <= ex.answer_start and ex.answer_start + len("Salzburg") <= b)


def test_an_answer_cut_by_the_window_edge_is_labelled_no_answer():
    offsets = [NO_TOKEN, (0, 3), (4, 9), (10, 15)]
    assert answer_positions(offsets, 4, 9) == (2, 2)
    assert answer_positions(offsets, 10, 20) == (0, 0)  # runs past the window's last token
    assert answer_positions(offsets, 0, 9) == (1, 2)


def test_questions_are_cut_so_every_window_keeps_context():
    tokenizer = build_tokenizer()
    question = " ".join(["which river flows north"] * 10)
    ex = ReaderExample("q", question, LONG, ("north",), LONG.index("north"), "north")
    windows = make_windows(tokenizer, [ex], max_length=32, stride=8, max_query_length=6)
    assert all(any(o != NO_TOKEN for o in offsets) for offsets in windows.offsets)
    assert all(w.count(tokenizer.sep_token_id) == 2 for w in windows.input_ids)


def test_empty_context_gives_no_answer_instead_of_failing():
    tokenizer = build_tokenizer()
    examples = [ReaderExample("q", "Where?", "", ("x",))]
    windows = make_windows(tokenizer, examples, max_length=32, stride=8, max_query_length=8)
    logits = [np.zeros((2, len(ids))) for ids in windows.input_ids]
    assert decode_answers(examples, windows, logits, 30) == [""]


# --- decoding ---------------------------------------------------------------------------------------------------------


def test_best_span_respects_order_and_maximum_length():
    offsets = [NO_TOKEN, NO_TOKEN, (0, 3), (4, 7), (8, 11), NO_TOKEN]
    start = np.array([9.0, 9.0, 1.0, 0.0, 5.0, 9.0])
    end = np.array([9.0, 9.0, 4.0, 2.0, 0.0, 9.0])
    # The best start (token 4) comes after the best end (token 2): spans must run forwards.
    score, a, b = best_span(start, end, offsets, max_answer_length=30)
    assert (a, b) == (0, 3) and score == 5.0
    score, a, b = best_span(start, end, offsets, max_answer_length=1)
    assert (a, b) == (0, 3)
    assert best_span(start, end, [NO_TOKEN] * 6, 30) is None


def test_decode_takes_the_best_window_of_each_example():
    examples = [ReaderExample("a", "?", "red green blue", ("blue",))]
    windows = Windows(
        example=[0, 0],
        input_ids=[[1, 2, 3], [1, 2, 3]],
        offsets=[[NO_TOKEN, (0, 3), (4, 9)], [NO_TOKEN, (4, 9), (10, 14)]],
        start=[0, 0],
        end=[0, 0],
    )
    logits = [np.array([[0, 1.0, 0.0], [0, 1.0, 0.0]]), np.array([[0, 0.0, 3.0], [0, 0.0, 3.0]])]
    assert decode_answers(examples, windows, logits, 30) == ["blue"]
    assert qa_scores(examples, ["blue"]) == {"exact_match": 100.0, "f1": 100.0}


# --- across tokenizers ------------------------------------------------------------------------------------------------


def test_map_span_logits_collects_the_teacher_tokens_inside_each_student_token():
    # context "playing ball": teacher "play" "##ing" "ball"; student "playing" "ba" "##ll"
    teacher_offsets = [NO_TOKEN, (0, 4), (4, 7), (8, 12)]
    student_offsets = [NO_TOKEN, (0, 7), (8, 10), (10, 12)]
    start = np.log(np.array([0.1, 0.5, 0.2, 0.2]))
    mapped = map_span_logits(start, teacher_offsets, student_offsets, "start")
    probs = np.exp(mapped)
    # "playing" spans two teacher tokens: it collects both starts (0.5 + 0.2); "ba" gets "ball"'s; "##ll" none.
    np.testing.assert_allclose(probs, [0.1, 0.7, 0.2, 0.0], atol=1e-12)
    end = np.log(np.array([0.1, 0.3, 0.4, 0.2]))
    np.testing.assert_allclose(
        np.exp(map_span_logits(end, teacher_offsets, student_offsets, "end")), [0.1, 0.7, 0.0, 0.2]
    )
    # The other way round: one teacher token over two student tokens lands on the one holding its first (last) char.
    back = map_span_logits(np.log(np.array([0.1, 0.7, 0.2, 0.0]) + 1e-300), student_offsets, teacher_offsets, "start")
    np.testing.assert_allclose(np.exp(back)[[0, 1, 3]], [0.1, 0.7, 0.2], atol=1e-12)
    assert np.exp(back)[2] == 0.0
    with pytest.raises(ValueError, match="side"):
        map_span_logits(start, teacher_offsets, student_offsets, "middle")


def test_map_teacher_probs_uses_the_overlapping_teacher_window_and_sums_to_one():
    ex = long_example("Salzburg")
    word, chars = build_tokenizer(), char_tokenizer()
    teacher = make_windows(word, [ex], max_length=64, stride=16, max_query_length=8)
    student = make_windows(chars, [ex], max_length=96, stride=32, max_query_length=16)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(len(teacher), 2, 64)).astype(np.float32)
    mapped = map_teacher_probs(teacher, logits, student)
    assert len(mapped) == len(student)
    for w, probs in enumerate(mapped):
        assert probs.shape == (2, len(student.input_ids[w]))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
        outside = [i for i, o in enumerate(student.offsets[w]) if o == NO_TOKEN and i != 0]
        assert np.all(probs[:, outside] == 0)


# --- across passages, as the pipeline's reader ranks them -------------------------------------------------------------


PASSAGES = [
    "Mozart wrote more than six hundred works. He was born in Salzburg in 1756.",
    "The piano was invented in Italy by Bartolomeo Cristofori around the year 1700.",
    "The Nile is the longest river in Africa.",
]
QUESTION = "Where was Mozart born?"


def _answers_and_logits(reader_class, tiny_reader):
    """The reader component's answers to QUESTION over PASSAGES, and the project's examples, windows and logits of
    the same model, read as the component reads them."""
    from haystack import Document
    from transformers import AutoModelForQuestionAnswering

    from distill.pipelines.loading import READER_SERVING
    from distill.training.tasks.windows import pad_windows

    settings = dict(model=str(tiny_reader), top_k=3, max_seq_length=64, stride=16, **READER_SERVING)
    reader = reader_class(**settings)
    reader.warm_up()
    answers = reader.run(query=QUESTION, documents=[Document(content=p) for p in PASSAGES])["answers"]
    tokenizer = build_tokenizer()
    examples = [ReaderExample(str(i), QUESTION, p, ()) for i, p in enumerate(PASSAGES)]
    windows = make_windows(tokenizer, examples, max_length=64, stride=16, max_query_length=64)
    model = AutoModelForQuestionAnswering.from_pretrained(tiny_reader).eval()
    inputs, _ = pad_windows(windows, list(range(len(windows))), tokenizer.pad_token_id)
    assert "token_type_ids" not in inputs  # as the Haystack reader calls the model
    with torch.no_grad():
        out = model(**inputs)
    logits = np.stack([out.start_logits.numpy(), out.end_logits.numpy()], axis=1)
    return settings, answers, examples, windows, logits


def test_decoding_across_passages_matches_the_haystack_reader(tiny_reader):
    """One question against three passages: the project's decoding picks the answer, the passage and the score that
    TransformersExtractiveReader (with the settings the project writes) gives, no-answer score included."""
    import inspect

    from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

    from distill.pipelines.loading import READER_SERVING
    from distill.training.tasks.windows import CALIBRATION_FACTOR, best_across_passages, no_answer_score

    default = inspect.signature(TransformersExtractiveReader.__init__).parameters["calibration_factor"].default
    assert READER_SERVING["calibration_factor"] == CALIBRATION_FACTOR == default
    _, answers, examples, windows, logits = _answers_and_logits(TransformersExtractiveReader, tiny_reader)
    top = next(a for a in answers if a.data is not None)
    passage, text, score = best_across_passages(examples, windows, logits, max_answer_length=30)
    assert (PASSAGES[passage], text) == (top.document.content, top.data)
    assert score == pytest.approx(top.score, abs=1e-5)
    real = [a.score for a in answers if a.data is not None]
    no_answer = next(a for a in answers if a.data is None)
    assert no_answer_score(real) == pytest.approx(no_answer.score, abs=1e-6)


def test_margin_reader_ranks_spans_by_their_margin_over_no_answer(tiny_reader):
    """NoAnswerMarginExtractiveReader scores sigmoid(cf * (start + end - start_0 - end_0)) per window: the project's
    margin decoding gives its top answer, passage and score; it round-trips through YAML under distill.*; and on one
    passage of one window its answers are the stock reader's, only rescored."""
    from haystack import Document, Pipeline
    from haystack_integrations.components.readers.transformers import TransformersExtractiveReader

    from distill.components.readers import NoAnswerMarginExtractiveReader
    from distill.pipelines.loading import ALLOWED_MODULES, READER_SERVING, READER_TYPES
    from distill.training.tasks.windows import best_across_passages

    settings, answers, examples, windows, logits = _answers_and_logits(NoAnswerMarginExtractiveReader, tiny_reader)
    top = next(a for a in answers if a.data is not None)
    passage, text, score = best_across_passages(examples, windows, logits, max_answer_length=30, margin=True)
    assert (PASSAGES[passage], text) == (top.document.content, top.data)
    assert score == pytest.approx(top.score, abs=1e-5)
    assert score != pytest.approx(best_across_passages(examples, windows, logits, max_answer_length=30)[2])

    # One passage, one window: the same spans in the same order as the stock reader, each rescored by the margin.
    one = [Document(content=PASSAGES[0])]
    stock, margin = TransformersExtractiveReader(**settings), NoAnswerMarginExtractiveReader(**settings)
    stock.warm_up()
    margin.warm_up()
    a = [x for x in stock.run(query=QUESTION, documents=one)["answers"] if x.data is not None]
    b = [x for x in margin.run(query=QUESTION, documents=one)["answers"] if x.data is not None]
    assert [x.data for x in a] == [x.data for x in b]
    assert [x.score for x in a] != pytest.approx([x.score for x in b])

    # Serialised under the project's allowlist, loaded back as itself.
    pipeline = Pipeline()
    pipeline.add_component("reader", NoAnswerMarginExtractiveReader(**settings))
    text_yaml = pipeline.dumps()
    assert READER_TYPES["margin"] in text_yaml
    loaded = Pipeline.loads(text_yaml, allowed_modules=ALLOWED_MODULES).get_component("reader")
    assert type(loaded) is NoAnswerMarginExtractiveReader
    assert loaded.calibration_factor == READER_SERVING["calibration_factor"]
