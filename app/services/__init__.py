"""Business logic: functions over a session that flush, never commit, and raise domain errors."""
