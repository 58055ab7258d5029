"""promcast: forecasts a workload metric from Prometheus and publishes the forecasts as gauges.

``promcast.forecaster`` is the ML core (free of Prometheus and the daemon); ``promcast.daemon`` is the service.
Importing the package imports neither.
"""

__version__ = "0.2.0"
