"""Verified, resumable model downloads.

For each model: skip it if the right bytes are already there; otherwise fetch from its URLs in order
(primary, then mirrors), resuming a `.part` file with an HTTP Range request and retrying transient
failures with exponential backoff; the finished `.part` is then hashed. Only a file whose SHA-256 matches the
catalog is moved into place (atomically); a mismatch deletes the `.part` and is never used. Several
models download in parallel up to a limit; the whole batch is refused before any transfer when the
disk lacks space. `requests` does the HTTP (well kept, handles redirects, proxies and TLS).
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import requests

from app.core.errors import (
    DoppelError,
    DownloadCancelledError,
    DownloadError,
    HashMismatchError,
    InsecureUrlError,
    InsufficientDiskSpaceError,
    NetworkUnreachableError,
    UnverifiedModelError,
)
from app.models.catalog import ModelEntry, check_url_allowed
from app.models.events import DownloadEvent, EventKind, EventSink, ignore_events
from app.models.store import ModelState, ModelStore, sha256_of

log = logging.getLogger(__name__)

# Kept free beyond the planned downloads, so the system does not run dry.
DISK_MARGIN_BYTES = 64 * 1024 * 1024
# Rounded published sizes may be a little low: plan with headroom.
INEXACT_SIZE_FACTOR = 1.1


@dataclass(frozen=True)
class DownloadOptions:
    parallel: int = 3
    retries: int = 4  # per URL, after the first try
    backoff_s: float = 0.5
    backoff_max_s: float = 8.0
    timeout_s: float = 30.0  # connect and between-bytes read timeout
    chunk_bytes: int = 1 << 16  # small: a cut connection loses at most one chunk
    progress_interval_s: float = 0.1
    trust_unverified: bool = False


@dataclass(frozen=True)
class DownloadResult:
    model_id: str
    path: Path | None
    status: str  # "downloaded", "present", "failed", "cancelled"
    error: DoppelError | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("downloaded", "present")


class _UrlFailed(Exception):
    """One URL gave up. `unreachable`: we never got an HTTP answer (DNS, refused, no route)."""

    def __init__(self, url: str, reason: str, unreachable: bool = False, mismatch: bool = False) -> None:
        super().__init__(f"{url}: {reason}")
        self.unreachable = unreachable
        self.mismatch = mismatch


class _Transient(Exception):
    """Worth another try at the same URL (resuming from what is on disk)."""

    def __init__(self, reason: str, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


class Downloader:
    def __init__(
        self,
        store: ModelStore,
        options: DownloadOptions | None = None,
        on_event: EventSink = ignore_events,
    ) -> None:
        self.store = store
        self.options = options or DownloadOptions()
        self.on_event = on_event
        self._cancel = threading.Event()
        # Hosts that did not resolve or refused the connection in this run: no retries on them, and
        # their other URLs fail at once (offline, the default set fails in seconds, not minutes).
        self._down_hosts: dict[str, str] = {}
        self._down_lock = threading.Lock()

    # ---- public API -------------------------------------------------------------------------

    def cancel(self) -> None:
        """Stop every transfer at the next chunk; .part files stay for a later resume."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def download_all(self, entries: Iterable[ModelEntry]) -> list[DownloadResult]:
        """Download in parallel; one result per model, in the given order. Raises only for a refusal
        that concerns the whole batch (no disk space), before any transfer starts."""
        unique = list({e.id: e for e in entries}.values())
        for entry in unique:
            self._emit(entry, EventKind.QUEUED, total=entry.size)
        self.check_disk_space(unique)
        workers = max(1, min(self.options.parallel, len(unique)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="download") as pool:
            return list(pool.map(self._download_reporting, unique))

    def download(self, entry: ModelEntry) -> Path:
        """Download one model (raising a DownloadError subclass on failure); returns its path."""
        self.check_disk_space([entry])
        result = self._download_reporting(entry)
        if result.error is not None:
            raise result.error
        assert result.path is not None
        return result.path

    def check_disk_space(self, entries: Iterable[ModelEntry]) -> None:
        needed = sum(self._bytes_still_needed(e) for e in entries)
        if needed == 0:
            return
        self.store.root.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.store.root).free
        if needed + DISK_MARGIN_BYTES > free:
            raise InsufficientDiskSpaceError(
                f"Not enough disk space in {self.store.root}: the downloads need {_mb(needed)} "
                f"(plus {_mb(DISK_MARGIN_BYTES)} kept free) but only {_mb(free)} is free. "
                "Free some space or choose another folder with --models-dir."
            )

    # ---- one model --------------------------------------------------------------------------

    def _download_reporting(self, entry: ModelEntry) -> DownloadResult:
        try:
            path, fetched = self._download_one(entry)
        except DownloadCancelledError as exc:
            self._emit(entry, EventKind.CANCELLED, message=str(exc))
            return DownloadResult(entry.id, None, "cancelled", exc)
        except DoppelError as exc:
            self._emit(entry, EventKind.FAILED, message=str(exc))
            log.info("%s", exc)  # the FAILED event carries it to the user, once
            return DownloadResult(entry.id, None, "failed", exc)
        if fetched:
            self._emit(entry, EventKind.DONE, done=entry.size, total=entry.size, message=str(path))
            return DownloadResult(entry.id, path, "downloaded")
        self._emit(entry, EventKind.SKIPPED, done=entry.size, total=entry.size, message="already present")
        return DownloadResult(entry.id, path, "present")

    def _download_one(self, entry: ModelEntry) -> tuple[Path, bool]:
        if self.store.status(entry).state is ModelState.PRESENT:
            return self.store.path_for(entry), False
        if not entry.verified and not self.options.trust_unverified:
            raise UnverifiedModelError(
                f"Model '{entry.id}' ({entry.file}) has a SHA-256 that no second source confirms; "
                "pass --trust-unverified (or tick 'trust' in the model manager) to install it anyway."
            )
        for url in entry.urls:
            try:
                check_url_allowed(url)
            except ValueError as exc:
                raise InsecureUrlError(f"Model '{entry.id}': {exc}") from None
        self.store.root.mkdir(parents=True, exist_ok=True)
        failures: list[_UrlFailed] = []
        for index, url in enumerate(entry.urls):
            self._check_cancel(entry)
            try:
                self._fetch_from(entry, url)
            except _UrlFailed as failure:
                failures.append(failure)
                log.info("Model %s: %s", entry.id, failure)  # and as a FALLBACK event
                if index + 1 < len(entry.urls):
                    self._emit(entry, EventKind.FALLBACK, url=url, message=f"{failure}; trying the next mirror")
                continue
            final = self.store.path_for(entry)
            return final, True
        raise self._summarise(entry, failures)

    def _fetch_from(self, entry: ModelEntry, url: str) -> None:
        """Fetch `url` into the .part file with retries, verify, then move into place."""
        host = _host_of(url)
        with self._down_lock:
            down = self._down_hosts.get(host)
        if down is not None:
            raise _UrlFailed(url, f"not tried: {host} {down} (found earlier in this run)", unreachable=True)
        attempts = self.options.retries + 1
        for attempt in range(attempts):
            self._check_cancel(entry)
            try:
                self._transfer(entry, url)
                break
            except _Transient as exc:
                if attempt + 1 == attempts:
                    raise _UrlFailed(
                        url, f"{exc} (gave up after {attempts} tries)", unreachable=exc.unreachable
                    ) from None
                delay = min(self.options.backoff_s * 2**attempt, self.options.backoff_max_s)
                self._emit(entry, EventKind.RETRY, url=url, message=f"{exc}; retrying in {delay:.1f} s")
                if self._cancel.wait(delay):
                    self._check_cancel(entry)
        self._verify_and_install(entry, url)

    def _transfer(self, entry: ModelEntry, url: str) -> None:
        part = self.store.part_path_for(entry)
        offset = part.stat().st_size if part.exists() else 0
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        timeout = self.options.timeout_s
        try:
            response = requests.get(url, headers=headers, stream=True, timeout=(timeout, timeout))
        except requests.exceptions.Timeout as exc:
            raise _Transient(f"timed out after {timeout:g} s") from exc
        except requests.exceptions.SSLError as exc:
            raise _UrlFailed(url, f"TLS error: {_root_cause(exc)}") from exc
        except requests.exceptions.ConnectionError as exc:
            if (final := _final_connect_failure(exc)) is not None:
                host = _host_of(url)
                with self._down_lock:
                    self._down_hosts.setdefault(host, final)
                raise _UrlFailed(url, f"cannot connect: {host} {final}", unreachable=True) from exc
            raise _Transient(f"cannot connect: {_root_cause(exc)}", unreachable=True) from exc
        with response:
            try:
                check_url_allowed(response.url)
            except ValueError as exc:
                raise _UrlFailed(url, f"redirected to an insecure URL: {exc}") from None
            status = response.status_code
            if status == 416 and offset:
                return  # the .part already holds every byte; verification decides
            if status in (408, 425, 429) or status >= 500:
                raise _Transient(f"HTTP {status} {response.reason}")
            if status not in (200, 206):
                raise _UrlFailed(url, f"HTTP {status} {response.reason}")
            if status == 206 and not _range_starts_at(response, offset):
                part.unlink(missing_ok=True)
                raise _Transient("the server answered a different byte range; restarting")
            if status == 200 and offset:
                log.info("%s ignores Range requests; restarting %s from zero", url, entry.file)
                offset = 0
            total = _total_size(response, offset)
            if entry.size_exact and total is not None and total != entry.size:
                part.unlink(missing_ok=True)
                raise _UrlFailed(url, f"serves {total} bytes but the catalog says {entry.size}")
            self._emit(entry, EventKind.STARTED, done=offset, total=total or entry.size, url=url)
            self._stream_to_part(entry, response, part, offset, total or entry.size)

    def _stream_to_part(
        self, entry: ModelEntry, response: requests.Response, part: Path, offset: int, total: int
    ) -> None:
        done = offset
        last_report = 0.0
        mode = "ab" if offset else "wb"
        with part.open(mode) as handle:
            try:
                for chunk in response.iter_content(chunk_size=self.options.chunk_bytes):
                    if self._cancel.is_set():
                        break
                    handle.write(chunk)
                    done += len(chunk)
                    now = time.monotonic()
                    if now - last_report >= self.options.progress_interval_s:
                        last_report = now
                        self._emit(entry, EventKind.PROGRESS, done=done, total=total)
            except requests.exceptions.RequestException as exc:
                raise _Transient(f"connection lost after {_mb(done)}: {_root_cause(exc)}") from exc
            finally:
                handle.flush()
                os.fsync(handle.fileno())
        self._check_cancel(entry)
        expected = response.headers.get("Content-Length")
        if expected is not None and done - offset < int(expected):
            raise _Transient(f"connection closed after {_mb(done)} of {_mb(total)}")
        self._emit(entry, EventKind.PROGRESS, done=done, total=total)

    def _verify_and_install(self, entry: ModelEntry, url: str) -> None:
        part = self.store.part_path_for(entry)
        self._emit(entry, EventKind.VERIFYING, url=url)
        digest = sha256_of(part)
        if digest != entry.sha256:
            part.unlink(missing_ok=True)
            raise _UrlFailed(
                url, f"SHA-256 mismatch (got {digest}, expected {entry.sha256}); file deleted", mismatch=True
            )
        final = self.store.path_for(entry)
        part.replace(final)  # atomic on one filesystem: readers see the old file or the verified one
        self.store.remember_hash(final, digest)

    # ---- helpers ----------------------------------------------------------------------------

    def _bytes_still_needed(self, entry: ModelEntry) -> int:
        status = self.store.status(entry)
        if status.state is ModelState.PRESENT:
            return 0
        planned = entry.size if entry.size_exact else int(entry.size * INEXACT_SIZE_FACTOR)
        if status.state is ModelState.PARTIAL:
            planned -= status.bytes_on_disk
        return max(planned, 0)

    def _summarise(self, entry: ModelEntry, failures: list[_UrlFailed]) -> DownloadError:
        details = "\n  ".join(str(f) for f in failures)
        if failures and all(f.unreachable for f in failures):
            return NetworkUnreachableError(
                f"Cannot reach any server for model '{entry.id}' ({entry.file}). "
                f"Check the internet connection or proxy.\n  {details}"
            )
        if any(f.mismatch for f in failures):
            return HashMismatchError(
                f"Model '{entry.id}' ({entry.file}) was downloaded but its SHA-256 does not match the "
                f"catalog; nothing was installed.\n  {details}"
            )
        return DownloadError(f"Could not download model '{entry.id}' ({entry.file}):\n  {details}")

    def _check_cancel(self, entry: ModelEntry) -> None:
        if self._cancel.is_set():
            raise DownloadCancelledError(
                f"Download of '{entry.id}' cancelled; the partial file is kept and the next download resumes it"
            )

    def _emit(self, entry: ModelEntry, kind: EventKind, **fields: object) -> None:
        self.on_event(DownloadEvent(entry.id, kind, **fields))  # type: ignore[arg-type]


def _range_starts_at(response: requests.Response, offset: int) -> bool:
    content_range = response.headers.get("Content-Range", "")  # "bytes 100-199/200"
    try:
        return int(content_range.split()[1].split("-")[0]) == offset
    except (IndexError, ValueError):
        return False


def _total_size(response: requests.Response, offset: int) -> int | None:
    content_range = response.headers.get("Content-Range")
    if content_range and "/" in content_range:
        tail = content_range.rsplit("/", 1)[1]
        if tail.isdigit():
            return int(tail)
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _host_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and everything behind it: causes, contexts, and the errors requests and urllib3 wrap in
    their arguments and `reason`."""
    pending, seen = [exc], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(e for e in wrapped if isinstance(e, BaseException))


def _final_connect_failure(exc: BaseException) -> str | None:
    """What no retry can change about the host (its name does not resolve, it refuses connections,
    there is no route to it), said of it; None for a failure worth retrying (a reset, a drop)."""
    for cause in _causes(exc):
        if isinstance(cause, socket.gaierror):
            return "does not resolve"
        if isinstance(cause, ConnectionRefusedError):
            return "refuses connections"
        if isinstance(cause, OSError) and cause.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "cannot be reached (no route)"
    return None


def _root_cause(exc: BaseException) -> str:
    while exc.__context__ is not None and exc.__context__ is not exc:
        exc = exc.__context__
    for arg in getattr(exc, "args", ()):
        if isinstance(arg, BaseException):
            exc = arg
    text = str(exc)
    return text.split(": ", 1)[-1] if "Failed to establish" in text else text


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
