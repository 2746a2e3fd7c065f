"""One module per case action (docs/case-rules.md lists them, generated from these objects)."""
