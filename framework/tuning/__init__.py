"""Tuning: search spaces written inline in a spec, searched with keras-tuner."""
