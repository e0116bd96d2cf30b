"""Swap and composite: swappers, restorers, masks, colour transfer, edge-aware blending and paste-back.

Everything here is torch and device-agnostic: on CUDA a face never leaves the GPU between the frame and
the pasted result; on the CPU the same code runs. Models are reached only through app.inference.
"""
