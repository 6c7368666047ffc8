"""What every stage uses: reading the user's files, writing a run's files, model specs and offline sources,
the processes of a launch, provenance, and the quality metrics as pure functions."""
