"""Telegram handlers: thin adapters that unpack an update, call the engine or the records,
render a template and reply. bot/app.py registers them in order."""
