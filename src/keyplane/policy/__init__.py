"""The identity plane: identities, delegation chains, guardrails and the decision point.

``records`` holds the plain data shared by storage, the in-memory policy state, the
service operations and the decision; ``state`` the immutable per-store snapshot the
decision reads; ``base_model`` the built-in authorization model identities live in.
"""
