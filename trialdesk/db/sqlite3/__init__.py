"""Django's SQLite backend with writers queued on a blocking file lock (see :mod:`.base`)."""
