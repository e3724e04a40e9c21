"""Hyperparameter search: spaces, studies in shared storage, local or Ray workers, reports."""
