"""randomization."""
