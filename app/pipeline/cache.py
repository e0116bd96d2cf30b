"""Per-frame cache of analysis results (the faces found: detections, landmarks, embeddings) for scrubbing.

Scrubbing back and forth over a video revisits the same frames; their faces are found once. Entries are
keyed by the source, the frame index and the settings' analysis key (PipelineSettings.analysis_key), so
moving the detector score or the tracking interval misses the cache; entries of an older key are dropped
at the first lookup with the new one, since nobody will ask for them again. Bounded (LRU) by entry
count: faces are a few hundred numbers, but their embeddings may live on the GPU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from app.faces.types import Face

DEFAULT_ENTRIES = 4096  # about two and a half minutes of 30 fps video


@dataclass(frozen=True)
class CacheKey:
    source: str  # the video's path (or any id of the frame source)
    frame: int
    analysis: str  # PipelineSettings.analysis_key()


class AnalysisCache:
    def __init__(self, max_entries: int = DEFAULT_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError(f"cache size must be ≥ 1, got {max_entries}")
        self.max_entries = max_entries
        self._entries: OrderedDict[CacheKey, tuple[Face, ...]] = OrderedDict()
        self._analysis: str | None = None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: CacheKey) -> list[Face] | None:
        with self._lock:
            self._invalidate_if_changed(key.analysis)
            faces = self._entries.get(key)
            if faces is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return list(faces)

    def put(self, key: CacheKey, faces: list[Face]) -> None:
        with self._lock:
            self._invalidate_if_changed(key.analysis)
            self._entries[key] = tuple(faces)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _invalidate_if_changed(self, analysis: str) -> None:
        if analysis != self._analysis:
            self._entries.clear()
            self._analysis = analysis
