"""Helpers for tests, demos and benchmarks, built locally and never downloaded: synthetic pages, WARC
files and pictures (``synthetic``), tiny models (``tiny_models``), failing jobs (``faulty_jobs``)."""
