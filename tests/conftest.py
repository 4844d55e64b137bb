"""Test configuration: hypothesis profiles.

``ci`` (selected when CI=true, or HYPOTHESIS_PROFILE=ci) runs thousands of random architectures;
``dev`` is the quick default. Both derandomise so a failure reproduces from its printed example.
"""

import os

# Keras 3 runs on the torch backend in the tests (no TensorFlow install needed)
os.environ.setdefault("KERAS_BACKEND", "torch")

from hypothesis import HealthCheck, settings  # noqa: E402 - after the backend choice

settings.register_profile("dev", max_examples=200, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.register_profile("ci", max_examples=2000, derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow], print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
