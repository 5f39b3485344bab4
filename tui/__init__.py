"""The keyward dashboard (Textual), a face: it uses vault.ops and vault.core (and the
agent's client to open a vault), never the command line's or the agent's internals.
Nothing here is imported by the CLI path."""
