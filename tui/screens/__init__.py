"""One screen per view; `base.HearthScreen` gives each the header lines, the footer and the update hooks."""
