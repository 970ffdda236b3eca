"""modelrollout.analysis"""
