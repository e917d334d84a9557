"""Safeguarding Panels: the system of record for multi-agency safeguarding case conferences."""
