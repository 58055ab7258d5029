"""promcast's forecasting core: data pipeline, models, training, and the frozen Forecaster.

It knows nothing of Prometheus or the daemon, and reads no environment variables.
"""

__version__ = "0.1.0"

from .artifact import ArtifactError
from .forecaster import DEFAULT_MODEL, DEFAULT_WINDOW, Forecaster, NotFittedError
from .models import MODELS
from .train import TrainConfig

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_WINDOW",
    "MODELS",
    "ArtifactError",
    "Forecaster",
    "NotFittedError",
    "TrainConfig",
    "__version__",
]
