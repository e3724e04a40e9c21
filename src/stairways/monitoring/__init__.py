"""Monitoring of the live side: the dashboard web app (server-sent events), the Prometheus
metrics exporter and the alert evaluator (webhook and email), all computed from the journal.

See :mod:`stairways.monitoring.app`, :mod:`stairways.monitoring.service`,
:mod:`stairways.monitoring.metrics` and :mod:`stairways.monitoring.alerts`.
"""
