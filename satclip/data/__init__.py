"""Data files shipped with satclip (see ATTRIBUTION.md)."""
