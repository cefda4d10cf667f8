"""dlhw: one CLI for the model families of a deep-learning / NLP course."""

__version__ = "0.1.0"
