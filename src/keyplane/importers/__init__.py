"""Importers: one export of a source system (AWS IAM, Kubernetes RBAC, GitHub) → an
:class:`~keyplane.importers.base.ImportPlan` of identities, model types and tuples, written
by :func:`keyplane.service.imports.import_source`. See docs/identity-sources.md."""
