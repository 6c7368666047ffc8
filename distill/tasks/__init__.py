"""The kinds of student distill trains, one module per task (:mod:`~distill.tasks.embedder`,
:mod:`~distill.tasks.reader`, with the reader's windows and span decoding in :mod:`~distill.tasks.windows`), and what
they share (:mod:`~distill.tasks.common`). Each task gives :class:`~distill.trainer.Trainer` what its ``Task``
protocol asks for."""
