"""The daily send, one file per step, read top-down.

runs.py plans a day's run, creates its deliveries and fans them out;
batch.py is what a worker does with one batch of them; daily_email.py
builds the mail; bulk_sql.py writes rows in bulk; recovery.py settles what
lost workers left. reasons.py names why a row did not end as sent.
"""
