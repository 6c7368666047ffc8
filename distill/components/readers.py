"""A reader whose answers compare across passages by what the model learnt about "no answer".

``TransformersExtractiveReader`` scores every span of every window ``sigmoid(calibration_factor * (start + end))`` of
the raw logits and ranks the spans of all retrieved passages by that score (read from its ``_postprocess``; matched by
``distill.training.tasks.windows.best_across_passages``). Raw logits carry a free offset per window: the span losses are
softmaxes over one window's positions, unchanged when every logit of the window moves by the same amount, so the
offset is whatever training left, and the component never reads the position-0 ("no answer") logits that a reader
trained on negative windows (``data.negatives``) learns to raise on a passage without the answer.

:class:`NoAnswerMarginExtractiveReader` is that component with one change: each window's start and end logits are
taken relative to its own position-0 logits before the component scores them, so a span scores
``sigmoid(calibration_factor * ((start_i + end_j) - (start_0 + end_0)))``: its margin over "no answer" in that window,
the quantity SQuAD 2.0 readers threshold. The margin has no free offset, so spans of different passages compare by
what the model learnt. Everything else (windows, candidates, overlap removal, the no-answer answer ``prod(1 - score)``,
serialisation) is the stock component's; on a single window the ranking of its spans is unchanged.
"""

from __future__ import annotations

from typing import Any

from haystack import component
from haystack_integrations.components.readers.transformers import TransformersExtractiveReader


def no_answer_margins(start: Any, end: Any, attention_mask: Any) -> tuple[Any, Any]:
    """Start and end logits ``(windows, positions)`` minus each window's first attended position's (the CLS or
    ``<s>`` token the reader's "no answer" target sits on; position 0 with the right padding both tokenizers use)."""
    first = attention_mask.long().argmax(dim=1, keepdim=True)
    return start - start.gather(1, first), end - end.gather(1, first)


@component
class NoAnswerMarginExtractiveReader(TransformersExtractiveReader):
    """``TransformersExtractiveReader`` ranking spans by their margin over the window's no-answer logits (see the
    module docstring); same parameters, same outputs."""

    def _postprocess(self, *, start, end, sequence_ids, attention_mask, answers_per_seq, encodings):
        start, end = no_answer_margins(start, end, attention_mask)
        # The parent's method by name: @component rebuilds the class, which breaks a zero-argument super().
        return TransformersExtractiveReader._postprocess(
            self,
            start=start,
            end=end,
            sequence_ids=sequence_ids,
            attention_mask=attention_mask,
            answers_per_seq=answers_per_seq,
            encodings=encodings,
        )
