"""Why the query-only student collapsed, measured: plain least squares against ridge for its Dense head.

The query-only student maps all-MiniLM-L6-v2's 384-d query embeddings into all-mpnet-base-v2's 768-d space through
a linear head fitted to the teacher's embeddings of the training questions. This prints how well conditioned that
fit is, the head each method gives (spectral norm, cosine to the teacher's queries on the training questions and on
the dev slice), and what one AdamW step of the whole student (cosine loss on one training batch, the recipe's
learning rate) does to the cosine distance on that batch.

    python -m benchmarks.probes.query_head recipes/embedder-squad-query-only.yaml data.sibling_questions=false \
        --out benchmarks/results/query-only-head.json
"""

from __future__ import annotations

import copy
import json
from typing import Any

import torch
import torch.nn.functional as F

from benchmarks.common import recipe_bench_main
from distill.common.provenance import library_versions, machine_info


def _one_step(student, head: torch.Tensor, batch: dict[str, Any], target: torch.Tensor, lr: float) -> dict[str, float]:
    from distill.training.tasks.embedder import append_head

    model = copy.deepcopy(student)
    append_head(model, head)

    def distance() -> float:
        model.eval()
        with torch.no_grad():
            out = model(dict(batch))["sentence_embedding"]
        model.train()
        return float((1 - F.cosine_similarity(out, target)).mean())

    before = distance()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    loss = (1 - F.cosine_similarity(model(dict(batch))["sentence_embedding"], target)).mean()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return {"cosine_distance_before": before, "cosine_distance_after_one_step": distance()}


def run(recipe_path: str, overrides: list[str]) -> dict[str, Any]:
    from distill.training.recipes import load_recipe
    from distill.training.tasks.embedder import (
        TeacherEmbeddings,
        load_sentence_transformer,
        ridge_projection,
        training_split,
    )

    recipe = load_recipe(recipe_path, overrides)
    max_q = recipe["max_length"]["query"]
    pairs, dev = training_split(recipe["data"])
    dev_queries = [q.text for q in dev.queries]

    teacher = TeacherEmbeddings(recipe["teacher"], batch_size=recipe["teacher_batch_size"])
    y = torch.from_numpy(teacher.encode(pairs.queries, max_q, "teacher: training questions")).double()
    y_dev = torch.from_numpy(teacher.encode(dev_queries, max_q, "teacher: dev questions")).double()
    student = load_sentence_transformer(recipe["student"])
    student.max_seq_length = max_q
    with torch.no_grad():
        x = student.encode(pairs.queries, batch_size=64, convert_to_tensor=True).cpu().double()
        x_dev = student.encode(dev_queries, batch_size=64, convert_to_tensor=True).cpu().double()
    singular = torch.linalg.svdvals(x)

    first = list(range(recipe["batch_size"]))
    batch = dict(
        student[0].tokenizer(
            [pairs.queries[i] for i in first], padding=True, truncation=True, max_length=max_q, return_tensors="pt"
        )
    )
    # Float32 rounding-sized noise on the inputs: a well-posed fit barely moves, an ill-posed one jumps.
    noisy = x + 1e-7 * torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=x.dtype)
    heads = {
        "least squares": torch.linalg.lstsq(x, y).solution.T.float(),
        "least squares, inputs + 1e-7 noise": torch.linalg.lstsq(noisy, y).solution.T.float(),
    }
    for ridge in (0.001, 0.01, 0.1, 1.0):
        heads[f"ridge {ridge}"] = ridge_projection(x, y, ridge)
    heads["ridge 0.1, inputs + 1e-7 noise"] = ridge_projection(noisy, y, 0.1)
    rows = []
    for name, head in heads.items():

        def cos(a: torch.Tensor, b: torch.Tensor, h: torch.Tensor = head) -> float:
            return float(F.cosine_similarity(a @ h.double().T, b).mean())

        row = {
            "head": name,
            "spectral_norm": float(torch.linalg.matrix_norm(head.double(), 2)),
            "train_cosine": cos(x, y),
            "dev_cosine": cos(x_dev, y_dev),
        }
        row |= _one_step(student, head, batch, y[first].float(), recipe["optimizer"]["lr"])
        rows.append(row)
        print(json.dumps(row), flush=True)
    return {
        "training_questions": len(pairs.queries),
        "dev_questions": len(dev_queries),
        "student_query_singular_values": {
            "largest": float(singular[0]),
            "smallest": float(singular[-1]),
            "below_1e-6_of_largest": int((singular < 1e-6 * singular[0]).sum()),
        },
        "heads": rows,
        "machine": machine_info(),
        "versions": library_versions(),
    }


def main(argv: list[str] | None = None) -> None:
    recipe_bench_main("benchmarks.probes.query_head", __doc__, run, "student_query_singular_values", argv)


if __name__ == "__main__":
    main()
