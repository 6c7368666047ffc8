"""``distill adapt``: distil a user's own retrieval pipeline on their own documents, with no labels.

1. The teacher is read from the user's YAML (the document embedder of the indexing pipeline and the text embedder of
   the query pipeline, any file and component names: :class:`~distill.teacher.embedders.PipelineTeacher`).
2. The corpus and the queries are checked, and the plan is printed with an estimate of the teacher's time before
   anything expensive starts; ``--budget`` (minutes or passages) caps the work and says what it left out. Where the
   indexing pipeline cleans or splits documents before its embedder, the passages are the chunks it writes
   (:mod:`distill.teacher.chunks`, run once and cached): the plan counts them and those the teacher still embeds.
3. The recipe is written (``distill train RECIPE`` repeats the run) with ``data.labels: teacher``: the teacher ranks
   the corpus for every training query (:mod:`distill.training.tasks.silver`).
4. Look before you spend: teacher and off-the-shelf student are scored first (relevance where ``--eval-data`` has
   labels, else agreement with the teacher on held-out queries) and the gap is stated in one sentence with its 95%
   interval and a verdict ("worth it", "little to gain"); a student that already matches the teacher's relevance
   stops the run, unless ``--anyway``.
5. Train, swap the student into copies of the user's YAML, and evaluate teacher, off-the-shelf and distilled student
   side by side in one run (the teacher's index comes from the cache the training filled).
"""

from distill.adapt.plan import AdaptOptions, Plan, build_recipe, make_plan, parse_budget
from distill.adapt.run import Look, adapt, held_out_queries, look_before_you_spend

__all__ = [
    "AdaptOptions",
    "Look",
    "Plan",
    "adapt",
    "build_recipe",
    "held_out_queries",
    "look_before_you_spend",
    "make_plan",
    "parse_budget",
]
