"""Restorer families (GFPGAN, CodeFormer, GPEN, RestoreFormer++): one contract in base.py."""
