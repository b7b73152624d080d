"""Evaluating policies on held-out seeds (common random numbers) and against the demo world."""
