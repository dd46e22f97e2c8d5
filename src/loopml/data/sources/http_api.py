"""HTTP JSON APIs: paginated by next-link or page number, retried with backoff, token from env.

Transient failures (5xx, 429, timeouts, refused connections) are retried ``retries`` times
with exponential backoff; anything else fails at once with the status and what to check.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from loopml.data.errors import SourceFormatError, SourceUnavailableError
from loopml.data.sources.base import ReadState, SourceBase, rebatch
from loopml.errors import InvalidInputError

if TYPE_CHECKING:
    import httpx
    import polars as pl

__all__ = ["HttpSource", "Pagination"]

_RETRY_STATUS = {429, 500, 502, 503, 504}


class Pagination(BaseModel):
    """How to reach the next page.

    ``next_link``: the response body holds the next page's URL at the dotted path ``next``
    (or ``next: header`` for an RFC 8288 ``Link: <...>; rel="next"`` header); reading stops when
    it is missing or null. ``page``: the ``param`` query parameter counts up from ``start`` until
    a page returns no records.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["none", "next_link", "page"] = "none"
    next: str = "next"
    param: str = "page"
    start: int = 1
    size_param: str | None = None
    size: int | None = Field(default=None, ge=1)
    max_pages: int = Field(default=10_000, ge=1)


class HttpSource(SourceBase):
    """Records from a JSON API. ``records`` is the dotted path to the list in each response."""

    type: Literal["http"] = "http"
    url: str
    params: dict[str, Any] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    records: str | None = None
    pagination: Pagination = Field(default_factory=Pagination)
    auth_env: str | None = Field(default=None, description="env var holding the token")
    auth_header: str = "Authorization"
    auth_scheme: str | None = "Bearer"
    retries: int = Field(default=4, ge=0)
    backoff: float = Field(default=0.5, ge=0)
    timeout: float = Field(default=30.0, gt=0)
    watermark: str | None = Field(default=None, description="record field that only grows")
    since_param: str | None = Field(
        default=None, description="query parameter that asks the API for records past a value"
    )

    def describe(self) -> str:
        return f"http source {self.url!r}"

    def batches(self, *, batch_rows: int, state: ReadState) -> Iterator[pl.DataFrame]:
        import httpx
        import polars as pl

        headers = dict(self.headers)
        if self.auth_env:
            token = os.environ.get(self.auth_env)
            if not token:
                raise InvalidInputError(
                    f"{self.describe()} needs a token in the environment variable "
                    f"{self.auth_env!r}, which is not set",
                    hint=f"export {self.auth_env}=<token> and run again",
                )
            headers[self.auth_header] = f"{self.auth_scheme} {token}" if self.auth_scheme else token
        params = dict(self.params)
        since = (state.since or {}).get("watermark")
        if since is not None and self.since_param:
            params[self.since_param] = since
        highest = since

        def frames() -> Iterator[pl.DataFrame]:
            nonlocal highest
            with httpx.Client(timeout=self.timeout, headers=headers) as client:
                for records in self._pages(client, params):
                    if not records:
                        continue
                    frame = pl.DataFrame(records, infer_schema_length=None)
                    if self.watermark and self.watermark in frame.columns:
                        if since is not None:
                            frame = frame.filter(pl.col(self.watermark) > since)
                        top = frame[self.watermark].max() if frame.height else None
                        if top is not None and (highest is None or top > highest):
                            highest = top
                    yield frame

        yield from rebatch(frames(), batch_rows)
        if self.watermark:
            state.after["watermark"] = highest

    def _pages(self, client: httpx.Client, params: dict[str, Any]) -> Iterator[list[Any]]:
        page = self.pagination
        url: str | None = self.url
        number = page.start
        for _ in range(page.max_pages):
            query = dict(params)
            if page.kind == "page":
                query[page.param] = number
                if page.size_param and page.size:
                    query[page.size_param] = page.size
            assert url is not None
            response = self._get(client, url, query if url == self.url else None)
            body = self._json(response)
            records = self._records(body)
            yield records
            if page.kind == "none":
                return
            if page.kind == "page":
                if not records:
                    return
                number += 1
                continue
            url = self._next_link(response, body)
            if not url:
                return
            url = str(response.url.join(url))
        raise SourceFormatError(
            f"{self.describe()} kept paginating past {page.max_pages} pages",
            hint="check the pagination settings, or raise pagination.max_pages",
        )

    def _get(self, client: httpx.Client, url: str, params: dict[str, Any] | None) -> httpx.Response:
        import httpx

        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(self.backoff * 2 ** (attempt - 1), 30.0))
            try:
                # params=None keeps a next link's own query string (httpx replaces it otherwise)
                response = client.get(url, params=params)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in _RETRY_STATUS:
                problem = f"HTTP {response.status_code}"
                continue
            if response.status_code in (401, 403):
                raise InvalidInputError(
                    f"{self.describe()} refused the request (HTTP {response.status_code})",
                    hint=f"check the token in {self.auth_env}"
                    if self.auth_env
                    else "set auth_env to the environment variable holding an API token",
                )
            if response.status_code >= 400:
                raise SourceFormatError(
                    f"{self.describe()} answered HTTP {response.status_code} for {url}",
                    hint="check the URL and query parameters",
                )
            return response
        raise SourceUnavailableError(
            f"{self.describe()} cannot be reached after {self.retries + 1} attempts "
            f"(last: {problem})",
            hint="check that the API is up and the URL is right; raise retries/backoff "
            "for a flaky service",
        )

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise SourceFormatError(
                f"{self.describe()} answered with something that is not JSON "
                f"(content-type {response.headers.get('content-type')!r})",
                hint="point the URL at the API endpoint, not a web page",
            ) from None

    def _records(self, body: Any) -> list[Any]:
        found = _dig(body, self.records) if self.records else body
        if found is None:
            found = []
        if isinstance(found, dict):
            found = [found]
        if not isinstance(found, list):
            raise SourceFormatError(
                f"{self.describe()}: {self.records or 'the response body'} is a "
                f"{type(found).__name__}, not a list of records",
                hint="set records: to the dotted path of the list (e.g. data.items)",
            )
        return found

    def _next_link(self, response: httpx.Response, body: Any) -> str | None:
        if self.pagination.next == "header":
            return response.links.get("next", {}).get("url")
        value = _dig(body, self.pagination.next)
        return str(value) if value else None


def _dig(body: Any, path: str | None) -> Any:
    if not path:
        return body
    for part in path.split("."):
        if not isinstance(body, dict):
            return None
        body = body.get(part)
    return body
