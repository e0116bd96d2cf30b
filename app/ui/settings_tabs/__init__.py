"""The settings panel's tabs (app/ui/settings_panel.py), one module per group of settings."""
