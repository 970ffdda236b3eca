"""Reference profiles: per-feature and prediction histograms of the training or holdout data,
shipped beside a model so that its server can count live inputs on the same bins."""
