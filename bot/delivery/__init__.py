"""Delivery: updates in (the inbox, the webhook's checks) and messages out (retried sends,
follow-ups posted to the secretariat group)."""
