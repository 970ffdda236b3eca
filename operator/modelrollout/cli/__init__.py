"""The kubectl plugin `kubectl modelrollout`: status, list, history and manual controls."""
