"""The fleet view: `hearth tui --mqtt URL...` without `--site`, one row per site the account may see."""
