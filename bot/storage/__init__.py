"""Storage: the tables, every read and write, the connection and its spool, the persisted
conversation state, and the schema migrations beside the models."""
