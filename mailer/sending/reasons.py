"""Why a delivery did not end as plainly sent: the reasons written on its row.

The admin, the run report and the sweeper read rows by these prefixes, so
each is written here once.
"""

QUOTA_REASON = "SES 24-hour quota reached"
SUPERSEDED_REASON = "superseded by the run of "
UNKNOWN_REASON = "fate unknown, not resent automatically: "
RESEND_REASON = "fate unknown, sent again: no SES Send event within "
CONFIRMED_REASON = "sent by a worker that stopped; SES's Send event confirmed it"
