"""Train stage: compile, fit, evaluate, write the run folder."""
