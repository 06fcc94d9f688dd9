"""Helpers for tests, demos and benchmarks: tiny models built locally, never downloaded."""
