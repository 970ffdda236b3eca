"""Manifest cases shared by the offline API tests and the real-API-server tests (see README.md)."""
