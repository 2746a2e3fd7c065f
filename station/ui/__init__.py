"""The station's terminal UI (Textual). Nothing is imported here: ``station`` must start fast."""
