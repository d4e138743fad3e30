"""Load test of the public pages (landing, subscribe, verify, manage) under gunicorn; see README.md."""
