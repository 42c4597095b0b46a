"""Ray's autoscaler SDK on the rayk8s runtime: ``ray.autoscaler.sdk.request_resources``."""
