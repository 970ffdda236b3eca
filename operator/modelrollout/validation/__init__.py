"""modelrollout.validation"""
