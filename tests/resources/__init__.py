"""Tests of one resource kind each, on a scratch folder."""
