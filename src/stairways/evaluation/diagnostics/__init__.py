"""The diagnostic suite: freeze-early validity, reward A/B/C, data-leakage audit."""
