"""Market-data files: ``aaiti data download`` fetches history through ccxt into the data directory.

Importing this package imports neither ccxt nor the network code: the CLI loads
``daemon.data.download`` only when the ``data`` verb runs.
"""
