"""Evaluation harness: GSM8K accuracy, pairwise preference, MT-Bench, collaborativeness."""
