"""Tokens: the signing key ring, access tokens (JWTs) and opaque refresh tokens."""
