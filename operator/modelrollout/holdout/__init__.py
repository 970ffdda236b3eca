"""modelrollout.holdout"""
