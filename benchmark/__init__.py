"""mlr-bench harness: models, training engine, metrics, tables, figures and profiles."""
