"""What every app shares and imports, and which imports none of them: the bottom layer."""
