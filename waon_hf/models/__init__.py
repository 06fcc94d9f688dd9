"""Model wrappers shared by scoring, evaluation and training."""
