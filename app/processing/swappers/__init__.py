"""Swapper families: one module each, behind SwapperFamily (base.py); swapper.py runs them."""
