"""Load tests and benchmarks of a Parley server: ``python bench/load.py SCENARIO``."""
