"""What every ``/v1`` router shares: path and paging parameters."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from keyplane.api.responses import error_responses

__all__ = ["PageSize", "StoreId", "Token", "error_responses"]

StoreId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=128,
        description="The store id (a ULID, or an id chosen at creation such as `default`).",
    ),
]
PageSize = Annotated[
    int,
    Query(
        description=(
            "How many items per page; at most KEYPLANE_MAX_PAGE_SIZE (default 1000), more "
            "is a 413 `limit_exceeded` error."
        ),
    ),
]
Token = Annotated[
    str | None,
    Query(
        max_length=4096,
        description="The `continuation_token` of the previous page; omit for the first page.",
    ),
]
