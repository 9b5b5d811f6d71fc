"""Package data: the public-domain astronaut photo (NASA; via scikit-image) for `livecam demo`."""
