"""Database backends of trialdesk (Django ``ENGINE`` values): ``trialdesk.db.sqlite3``."""
