"""Masks in the swap crop's space, float [1, 1, S, S] in 0..1 (1 = take the swapped face)."""
