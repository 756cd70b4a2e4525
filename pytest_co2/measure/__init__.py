"""Measuring: windows and steps over a backend, statistics, records, idle power, device locks.

Pure given a backend and a clock; imports only :mod:`pytest_co2.backends` below it.
"""
