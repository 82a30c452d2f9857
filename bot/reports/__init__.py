"""Reports for the secretariat: the figures of a period (/stats and the HTML report), the
follow-ups listed, and the CSV, Excel and HTML exports."""
