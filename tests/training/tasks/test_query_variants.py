"""Variants of the user's queries (``data.query_variants``): seeded, a few words left out, never of a held-out query,
and the held-out queries the same with and without them."""

import re

import pytest
from haystack import Document

from distill.errors import DistillError
from distill.training import recipes
from distill.training.tasks import silver
from distill.training.tasks.queries import pseudo_queries, query_variants

USER = [
    ("how do i claim business expenses with no income", "user"),
    ("is a roth ira better than a 401k for me", "user"),
    ("why buy bonds", "user"),
    ("stocks", "user"),
    ("What is a dividend?", "sentence"),
]


def test_a_variant_leaves_a_fifth_of_the_words_out_in_their_order_and_is_seeded():
    out = query_variants(USER, 2, seed=0)
    assert out == query_variants(USER, 2, seed=0) and out != query_variants(USER, 2, seed=1)
    assert query_variants(USER, 0, seed=0) == []
    assert all(kind == "variant" for _, kind in out)
    by_source = {0: [], 1: [], 2: []}
    for text, _ in out:
        for i in by_source:
            words, kept = USER[i][0].split(), text.split()
            it = iter(words)
            if len(kept) < len(words) and all(w in it for w in kept):  # kept is an ordered subsequence
                by_source[i].append(text)
                break
    assert len(by_source[0]) == len(by_source[1]) == 2  # 9 words: 2 left out of each variant
    assert all(len(t.split()) == 7 for t in by_source[0])
    assert all(len(t.split()) == 2 for t in by_source[2])  # 3 words: one left out
    assert len(out) == 6  # "stocks" is too short and a pseudo-query is never varied
    assert len({t for t, _ in out}) == len(out) and not {t for t, _ in out} & {t for t, _ in USER}


def test_no_variant_of_a_held_out_query_and_the_held_out_queries_stay_the_same():
    users = [(f"how{i} is{i} tax{i} on{i} bonds{i}", "user") for i in range(30)]  # each word names its query
    docs = [Document(content=f"Passage {i} says something. It goes on about tax.") for i in range(10)]
    data = {"queries": "q.txt", "pseudo_queries": None, "pseudo_kind": "sentence", "seed": 0, "dev_questions": 5}
    data |= {"questions": None}
    base = users + pseudo_queries(docs, None, "sentence", 0)

    def with_variants(n):
        cfg = data | {"query_variants": n}
        queries = list(base)
        if n:
            skip = set(silver.held_out(cfg, queries))
            queries += query_variants(queries, n, 0, skip)
        return cfg, queries

    cfg0, plain = with_variants(0)
    cfg2, varied = with_variants(2)
    held = silver.held_out(cfg0, plain)
    assert held == silver.held_out(cfg2, varied) and len(held) == 5 and all(plain[i][1] == "user" for i in held)
    variants = [t for t, kind in varied if kind == "variant"]
    assert len(variants) == 2 * 25 and all(len(t.split()) == 4 for t in variants)
    sources = {int(re.sub(r"\D", "", t.split()[0])) for t in variants}
    assert sources == set(range(30)) - set(held)


def test_training_queries_append_the_variants_after_the_pseudo_queries(tmp_path):
    log = tmp_path / "q.txt"
    log.write_text("\n".join(f"what is the tax on item {i} in my account" for i in range(12)) + "\n")
    docs = [Document(content=f"Passage {i} says something. It goes on about tax.") for i in range(4)]
    data = {"queries": str(log), "pseudo_queries": None, "pseudo_kind": "sentence", "seed": 0, "dev_questions": 2}
    data |= {"questions": None}
    plain, _ = silver.training_queries(data | {"query_variants": 0}, docs)
    varied, _ = silver.training_queries(data | {"query_variants": 1}, docs)
    assert varied[: len(plain)] == plain
    assert [k for _, k in varied[len(plain) :]] == ["variant"] * (12 - 2)  # the 2 held-out queries give none
    assert silver.held_out(data, plain) == silver.held_out(data | {"query_variants": 1}, varied)


def test_recipe_checks_of_query_variants():
    ok = {"labels": "teacher", "queries": "q.txt", "query_variants": 2}
    assert recipes.validate(recipes._merge(recipes.EMBEDDER_DEFAULTS, {"data": ok}, "recipe"))
    for wrong, match in (
        ({"query_variants": -1}, "query_variants must be a positive int, got -1"),
        ({"query_variants": 1.5}, "query_variants must be a positive int, got 1.5"),
        ({"query_variants": True}, "query_variants must be a positive int, got True"),
        ({"queries": None, "pseudo_queries": 5}, "give data.queries too"),
    ):
        with pytest.raises(DistillError, match=match):
            recipes.validate(recipes._merge(recipes.EMBEDDER_DEFAULTS, {"data": ok | wrong}, "recipe"))
