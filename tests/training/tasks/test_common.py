"""What the tasks share: layer surgery, the QKV recorder, length-grouped batches and the weighted mix of losses."""

import pytest
import torch
from conftest import tiny_bert_config
from torch import nn

from distill.errors import DistillError
from distill.training.tasks.common import (
    QKVRecorder,
    encoder_layers,
    keep_layers,
    length_grouped_batches,
    length_grouped_rows,
    loss_requirements,
    qkv_linears,
    split_losses,
    weighted_losses,
)


def tiny_bert(layers: int = 3) -> nn.Module:
    from transformers import BertForQuestionAnswering

    torch.manual_seed(0)
    return BertForQuestionAnswering(tiny_bert_config(50, layers=layers))


class Scaled(nn.Module):
    """A stand-in loss: ``scale`` times the student's ``x``, reading ``requires`` like a real loss."""

    def __init__(self, scale: float, requires: tuple[str, ...] = ()):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(scale))
        self.requires = requires
        self.calls = 0

    def forward(self, student, teacher):
        self.calls += 1
        return self.scale * student["x"] - teacher["x"]


def test_weighted_losses_scale_each_term_and_skip_a_weight_of_zero():
    triples = [
        ("a", 0.5, Scaled(2.0, ("hidden_states",))),
        ("b", 0.0, Scaled(1.0, ("qkv",))),
        ("c", 3.0, Scaled(1.0)),
    ]
    names, weights, losses = split_losses(triples)
    assert names == ["a", "b", "c"] and weights == [0.5, 0.0, 3.0]
    assert isinstance(losses, nn.ModuleList) and len(list(losses.parameters())) == 3  # the losses' parameters train
    assert loss_requirements(triples) == {"hidden_states", "qkv"}
    terms = weighted_losses(names, weights, losses, {"x": torch.tensor(4.0)}, {"x": torch.tensor(1.0)})
    assert set(terms) == {"a", "c"}
    assert terms["a"].item() == pytest.approx(0.5 * (2 * 4 - 1)) and terms["c"].item() == pytest.approx(3.0 * 3)
    assert losses[1].calls == 0  # a loss of weight 0 is not run: it may need outputs nobody computed


def test_length_grouped_batches_never_put_one_passage_twice_in_a_batch():
    positive = [0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 7, 7]
    lengths = [5, 9, 1, 30, 2, 8, 8, 7, 40, 3, 6, 6]
    batches = length_grouped_batches(lengths, positive, 3, seed=1)
    assert sorted(i for b in batches for i in b) == list(range(len(positive)))  # every pair, once
    for batch in batches:
        assert len({positive[i] for i in batch}) == len(batch)
    assert batches == length_grouped_batches(lengths, positive, 3, seed=1)  # seeded
    assert length_grouped_batches(lengths, positive, 3, seed=2) != batches


def test_length_grouped_batches_sort_by_length_within_a_chunk():
    lengths = [10, 1, 9, 2, 8, 3, 7, 4]
    batches = length_grouped_batches(lengths, list(range(8)), 2, seed=0)
    assert sorted(sorted(lengths[i] for i in b) for b in batches) == [[1, 2], [3, 4], [7, 8], [9, 10]]


def test_length_grouped_rows_batch_the_given_rows_by_their_lengths():
    rows = [10, 11, 12, 13]
    batches = length_grouped_rows(rows, [3, 50, 4, 51], 2, seed=0)
    assert sorted(map(sorted, batches)) == [[10, 12], [11, 13]]  # the two short rows together, the two long ones


def test_keep_layers_cuts_the_encoder_and_names_a_missing_layer():
    model = tiny_bert(layers=3)
    kept = encoder_layers(model)[2]
    keep_layers(model, [0, 2])
    assert list(encoder_layers(model)) == [encoder_layers(model)[0], kept] and model.config.num_hidden_layers == 2
    with pytest.raises(DistillError, match=r"recipe.student.layers \[0, 5\] names layer 5, but the student has 2"):
        keep_layers(model, [0, 5], field="recipe.student.layers", owner="the student")
    with pytest.raises(DistillError, match="cannot find its encoder layers"):
        encoder_layers(nn.Linear(2, 2))


def test_qkv_recorder_keeps_each_layers_projections_until_taken():
    model = tiny_bert(layers=2).eval()  # no dropout: the first layer's query is a function of the embeddings
    assert len(qkv_linears(model)) == 2
    recorder = QKVRecorder(model)
    ids = torch.tensor([[2, 7, 9, 3]])
    with torch.no_grad():
        first_query = qkv_linears(model)[0][0](model.bert.embeddings(input_ids=ids))
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    taken = recorder.take()
    assert len(taken) == 2 and all(t.shape == (1, 4, 32) for triple in taken for t in triple)
    torch.testing.assert_close(taken[0][0], first_query)
    assert recorder.take()[0] == (None, None, None)  # taking clears: a stale batch is never read twice
