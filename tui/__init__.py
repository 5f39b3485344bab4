"""The keyward dashboard (Textual).  Nothing here is imported by the CLI path."""
