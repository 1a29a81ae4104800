"""gdrun's Optuna sweeper: hydra/sweeper=gdrun_optuna, the sweeper of `gdrun -m search=...` (conf/search/).

config.py puts it in Hydra's ConfigStore, gdrun_optuna.py holds the plugin class, _space.py reads
the search space (Hydra's override syntax) into Optuna's distributions, _search.py runs the search
on Optuna's ask-and-tell API. Hydra imports the modules without a leading underscore at every
start, to find its plugins: they stay light (optuna comes in when a search starts).
"""
