"""Renderers: read an AuditResult, return text. Nothing here computes a measurement."""
