"""Fuzzing trueup with hostile bundles: a seeded generator and a sandboxed runner.

``tests/test_fuzz.py`` runs a fixed seed in CI; ``bench/fuzz.py`` runs thousands of cases.
"""
