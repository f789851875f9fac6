"""Tests of the observability pack in ``config/observability/`` (alert rules, Grafana dashboard)."""
