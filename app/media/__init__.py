"""Media: still images and videos in and out, as uint8 [H, W, 3] RGB torch tensors.

- images (`load_image`, `read_image`, `write_image`): EXIF orientation, alpha kept aside, 16-bit and
  CMYK converted with notes saying so; atomic writes of PNG, JPEG, WebP, TIFF and BMP.
- video (`open_video` → `VideoSource`, `VideoWriter`): PyAV decode with rotation applied and source
  timestamps kept; H.264/HEVC encode (NVENC when it really opens, else x264/x265) with the source's
  audio copied in, into MP4, MOV or Matroska, renamed into place only after a clean finish.
- labels (`SyntheticLabel`, `read_label`): the synthetic-media label every output carries (JSON plus
  the IPTC "compositeSynthetic" digital source type in XMP), read back from any of those files.
- errors: `MediaReadError` (with `ImageReadError`) and `MediaWriteError` (with `VirtualCameraError`),
  messages naming the file.
- capabilities: what this machine's FFmpeg can do in hardware, tested by opening codecs.
- video also decodes with NVDEC (`open_video(path, hardware=True)`, software fallback with a reason) and
  hands frames out on a CUDA device when asked, converted from YUV on the GPU (yuv).
- frame_queue (`FrameQueue`): a decode thread prefetching into a bounded buffer, frame-accurate seeks that
  cancel what was queued, errors re-raised to the consumer.
- webcam (`WebcamSource`): live capture, latest frame wins, reconnects with backoff.
- virtual_camera (`VirtualCamera`): live output through pyvirtualcam; `VirtualCameraError` says what to
  install.
"""
