"""Face analysis: detectors, landmarks, recognition, alignment, selection. Knows faces, not Qt."""
