"""Publishing: dataset/model/benchmark cards, uploads to the Hub, and URL outputs (``-o s3://``, ``hf://``)."""
