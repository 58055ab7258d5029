"""Evaluation and model comparison: the rolling-origin protocol, measures, plots, report and benchmark.

Import the submodules you need (``evaluate``, ``protocol``, ``benchmark``, ``report``); importing the package
loads nothing heavy (torch, matplotlib, the traces).
"""
