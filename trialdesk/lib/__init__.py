"""Django-free helpers, each module named after what it does."""
