"""modelrollout.core"""
