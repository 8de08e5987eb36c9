"""Evaluation: metrics per modality, classical baselines, CompressAI-format results, BD-rate and RD plots."""
