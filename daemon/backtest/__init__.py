"""Backtests: run the live pipeline over recorded data on a simulated clock, and report.

``runner`` runs a config to the end of its data (``run_backtest``, ``run_backtest_sync``);
``result`` turns the run into the result dict and its files; ``metrics`` holds the pure
metric functions, ``table`` the terminal summary, ``html_report`` the HTML page and
``command`` the ``aaiti backtest`` verb. See docs/backtest.md.
"""
