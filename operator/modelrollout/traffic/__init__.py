"""modelrollout.traffic"""
