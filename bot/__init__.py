"""The application: settings, answering rules, templates, records, Telegram handlers, CLI."""
