"""Configuration: the typed schemas behind conf/, value checks, and targets read back from old folders.

Nothing here imports torch: `gdrun --help`, `gdrun --cfg job` and configuration errors answer
before it loads.
"""
