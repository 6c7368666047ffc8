"""The kinds of student distill trains, one module per task (:mod:`~distill.training.tasks.embedder`,
:mod:`~distill.training.tasks.reader`, with the reader's windows and span decoding in
:mod:`~distill.training.tasks.windows`), and what
they share (:mod:`~distill.training.tasks.common`). Each task gives :class:`~distill.training.trainer.Trainer` what
its ``Task``
protocol asks for."""
