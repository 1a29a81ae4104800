"""Dataset builders named by the data configs' _target_; each returns a gdrun.training.data.Dataset."""
