"""Project-wide API plumbing shared by every app's views."""
