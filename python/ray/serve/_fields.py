"""A dict with a fixed set of keyword fields, readable as attributes.

Ray's config classes (AutoscalingConfig, HTTPOptions, ...) are pydantic
models; here they are dicts so that they pass as they are into a
deployment's options and the deploy config JSON."""


class FieldDict(dict):
    """Subclasses list their fields (name → default) in FIELDS."""

    FIELDS = {}

    def __init__(self, **kwargs):
        unknown = sorted(set(kwargs) - set(self.FIELDS))
        if unknown:
            raise TypeError(f"{type(self).__name__} got an unexpected field '{unknown[0]}'; "
                            f"its fields are {', '.join(sorted(self.FIELDS))}")
        super().__init__()
        for key, value in kwargs.items():
            self[key] = value

    def __getattr__(self, name):
        if name in self:
            return self[name]
        if name in self.FIELDS:
            return self.FIELDS[name]
        raise AttributeError(f"{type(self).__name__} has no field '{name}'")

    def __setattr__(self, name, value):
        if name not in self.FIELDS:
            raise AttributeError(f"{type(self).__name__} has no field '{name}'")
        self[name] = value

    def dict(self):
        """Every field, set or default (pydantic's .dict())."""
        return {k: self.get(k, d) for k, d in self.FIELDS.items()}

    model_dump = dict
