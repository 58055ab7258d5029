"""promcast's daemon: reads a metric from Prometheus, forecasts it, and publishes the forecasts as gauges."""
