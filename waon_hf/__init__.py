"""waon_hf: build, publish, train on and evaluate Japanese image-text datasets, Hugging Face-native."""

__version__ = "0.1.0"
