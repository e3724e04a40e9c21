"""Scheduled jobs (reward audits now; weekly reports and nightly stress tests later)."""
