"""Embedded admin HTTP API: backend protocol, auth, routes, OpenAPI, log streams, server."""
