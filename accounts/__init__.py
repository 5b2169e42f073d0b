"""Accounts' API access: OAuth logins and their refresh tokens, long-lived access tokens."""
