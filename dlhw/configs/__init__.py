"""Shipped recipe configs (one YAML per recipe, presets inside). ``configs/`` at the repository root points here."""
