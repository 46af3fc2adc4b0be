"""Collaboration cards: product cards, target collaborations, sample requests (R18)."""
