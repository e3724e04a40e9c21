"""Stairways: reinforcement-learning intraday trading for NVDA and MSFT on 1-minute bars."""

__version__ = "0.1.0"
