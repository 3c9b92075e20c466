"""Incidents, routing, the outbox and the notifiers that reach people."""
