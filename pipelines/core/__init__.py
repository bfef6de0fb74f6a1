"""Ground floor: config, artifact paths, atomic io, errors, hashing, gates, plots, the step result type."""
