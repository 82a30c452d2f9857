"""Documents an admin sends, made into knowledge: checked, converted from Markdown, text, PDF
or HWPX to headed sections (conversion.py), described from the caption (caption.py), and
written as a policy file with its source (policy.py). Nothing here knows Telegram."""
