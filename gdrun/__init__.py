"""gdrun: gradient-descent experiments in PyTorch, composed with Hydra, one folder per run.

From Python: `gdrun.run(overrides)` runs an experiment as the command does and returns its
summary; `gdrun.load_run(folder)` reads a run back (config, metrics, model). Both come from
gdrun.api on first use, so `import gdrun` stays light (no torch, no Hydra).
"""

__version__ = "0.1.0"
__all__ = ["run", "load_run", "__version__"]


def __getattr__(name: str):
    if name in ("run", "load_run"):
        from gdrun import api

        return getattr(api, name)
    raise AttributeError(f"module 'gdrun' has no attribute {name!r}")
