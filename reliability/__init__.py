"""Reliability evidence: ``make soak`` (reliability.soak) and ``make chaos`` (reliability.chaos)."""
