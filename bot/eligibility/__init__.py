"""The guided eligibility check (/check): its rules as data (rules.py), read from
knowledge/eligibility.yaml (loading.py), and the button conversation (conversation.py)."""
