"""Tokens: the OAuth 2.0 authorization server's domain rules (issue 6) — signing keys and
their JWK form (:mod:`keyplane.tokens.keys`), the JWKS and authorization-server metadata
documents (:mod:`keyplane.tokens.jwks`), client credentials and assertions
(:mod:`keyplane.tokens.clients`), access token claims and JWS checks
(:mod:`keyplane.tokens.access`), scopes (:mod:`keyplane.tokens.scopes`), trusted external
issuers (:mod:`keyplane.tokens.external`) and the OAuth errors
(:mod:`keyplane.tokens.errors`). The operations are in :mod:`keyplane.service.tokens`."""
