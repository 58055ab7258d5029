"""Where forecasts go besides /metrics: ``push`` writes each cycle's forecasts to an import endpoint, stamped at
their own future times."""
