"""The x264 presets, apart from the encoder (app.media.video_writer), which loads PyAV: the CLI's parser
lists them as choices without paying for it."""

from __future__ import annotations

from typing import Literal, get_args

# Fastest first; x265 takes the same names. NVENC has presets of its own (VideoWriter runs its p5).
X264Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]
X264_PRESETS: tuple[X264Preset, ...] = get_args(X264Preset)
