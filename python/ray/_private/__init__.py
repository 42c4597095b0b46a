"""Internal helpers of the ray package; not an API."""
