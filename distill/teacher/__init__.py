"""Model outputs computed once and cached: the teacher cache, the teacher as the user's pipelines hold it, and a
corpus indexed through that cache."""
