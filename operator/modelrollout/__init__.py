"""modelrollout: progressive rollout of machine-learning models on Kubernetes."""

__version__ = "0.1.0"
