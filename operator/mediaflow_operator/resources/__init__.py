"""Kopf-free MediaJob models, constants and the CRD generator."""
