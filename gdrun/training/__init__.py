"""Training: the parts a config builds (data, models, optimizers), the loop, checkpoints, the display.

`runner.train(cfg, folder)` is the whole run; everything it writes goes through `outputs.Outputs`.
Importing torch is this layer's business: the layers above import it only when a run starts.
"""
