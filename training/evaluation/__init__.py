"""Evaluation's parts: tables, checks and reports."""
