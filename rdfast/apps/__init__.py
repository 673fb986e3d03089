"""Applications on top of the estimators: the command line, the demo, its models, trainers,
data loaders and figures."""
