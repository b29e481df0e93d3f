"""Response bodies of identity source imports (issue 10): ``/v1/stores/{store}/imports…``.

Each model mirrors the ``to_json`` / ``summary`` of its record in
:mod:`keyplane.importers.records` field for field, so the REST API, the CLI's ``--json``
and the MCP tool return one JSON shape and the HTTP SDK rebuilds the record from it. The
request body of an import is the source's export itself (any JSON), read by the
importer. Times are seconds since the Unix epoch (UTC, a JSON number).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from keyplane.importers.records import ImportRecord, ImportResult

__all__ = ["ChangeCountsOut", "ImportList", "ImportRecordOut", "ImportResultOut"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ChangeCountsOut(_Out):
    added: int
    changed: int
    removed: int


class ImportResultOut(_Out):
    source: str = Field(description="The source imported: `aws`, `kubernetes`, `github`.")
    scope: str = Field(description="The account, cluster or organisation the export covers.")
    digest: str = Field(description="SHA-256 of the export's canonical JSON.")
    dry_run: bool = Field(description="True: nothing was written; the counts say what would be.")
    identities: ChangeCountsOut = Field(
        description="Identities created, changed (name, attributes, owners), deprovisioned."
    )
    tuples: ChangeCountsOut = Field(description="Tuples written and deleted.")
    identities_added: list[str]
    identities_changed: list[str]
    identities_removed: list[str]
    tuples_added: list[str] = Field(description="As `object#relation@user`.")
    tuples_removed: list[str]
    warnings: list[str] = Field(description="What the importer could not model, and why.")
    model_changed: bool = Field(description="The model fragment added types or relations.")
    model_id: str | None = Field(default=None, description="The model the import used.")
    revision: int = Field(description="The store revision after the import.")
    batches: int = Field(description="How many write transactions it took.")

    @classmethod
    def of(cls, r: ImportResult) -> ImportResultOut:
        return cls.model_validate(r.to_json())


class ImportRecordOut(_Out):
    source: str
    scope: str
    digest: str
    identity_count: int = Field(description="Identities the import created and keeps.")
    tuple_count: int = Field(description="Tuples the import wrote and keeps.")
    identities: ChangeCountsOut = Field(description="What that import changed.")
    tuples: ChangeCountsOut
    warnings: list[str]
    imported_at: float
    imported_by: str | None = None
    revision: int

    @classmethod
    def of(cls, r: ImportRecord) -> ImportRecordOut:
        return cls.model_validate(r.to_json())


class ImportList(_Out):
    imports: list[ImportRecordOut]
