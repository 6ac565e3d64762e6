"""Benchmarks behind ``healda bench`` (library side: run, measure, return rows as dicts)."""
