"""Tokens: the OAuth 2.0 authorization server's domain rules (issue 6) — signing keys and
their JWK form (:mod:`keyplane.tokens.keys`), the JWKS and authorization-server metadata
documents (:mod:`keyplane.tokens.jwks`)."""
