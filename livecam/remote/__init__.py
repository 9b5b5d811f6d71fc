"""Remote inference through Triton Inference Server (issue 14): `livecam serve` and the `runtime.remote` client."""
