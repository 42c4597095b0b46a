"""A scikit-learn iris classifier served over HTTP. Each replica trains a
logistic regression on the iris dataset bundled with scikit-learn when it
starts (nothing is downloaded), then classifies the four measurements (cm)
of a flower posted as JSON: a list in the dataset's order, or an object.

    curl -X POST http://<proxy>:8000/iris -d '[5.1, 3.5, 1.4, 0.2]'
    curl -X POST http://<proxy>:8000/iris \\
        -d '{"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}'
    # → {"class": "virginica", "class_id": 2, "probabilities": {...}}

Needs scikit-learn in the replicas' interpreter (Debian's python3-sklearn;
RAYK8S_SERVE_PYTHON names the interpreter when `python3` is another one).
"""

import json

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from rayk8s import serve

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")


class BadInput(ValueError):
    pass


def parse_features(payload):
    """The four measurements from a list or an object, as floats."""
    if isinstance(payload, dict):
        missing = [f for f in FEATURES if f not in payload]
        if missing:
            raise BadInput(f"missing features: {', '.join(missing)}")
        values = [payload[f] for f in FEATURES]
    elif isinstance(payload, list):
        if len(payload) != len(FEATURES):
            raise BadInput(f"expected {len(FEATURES)} features ({', '.join(FEATURES)}), got {len(payload)}")
        values = payload
    else:
        raise BadInput(f"expected a JSON list or object of the features {', '.join(FEATURES)}")
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        raise BadInput("features must be numbers") from None


@serve.deployment(num_replicas=2, max_ongoing_requests=8, ray_actor_options={"num_cpus": 0.2})
class IrisClassifier:
    def __init__(self):
        iris = load_iris()
        self.classes = [str(name) for name in iris.target_names]
        self.model = LogisticRegression(max_iter=1000)
        self.model.fit(iris.data, iris.target)
        self.accuracy = float(self.model.score(iris.data, iris.target))

    def classify(self, features):
        probabilities = self.model.predict_proba([features])[0]
        class_id = int(probabilities.argmax())
        return {
            "class": self.classes[class_id],
            "class_id": class_id,
            "probabilities": {name: round(float(p), 4) for name, p in zip(self.classes, probabilities)},
        }

    # Sync: prediction is CPU work, run on the replica's thread pool.
    def __call__(self, request):
        if request.method == "GET":
            return {"model": "LogisticRegression", "classes": self.classes, "features": list(FEATURES),
                    "training_accuracy": round(self.accuracy, 4)}
        try:
            payload = json.loads(bytes(request.body()) or b"null")
            return self.classify(parse_features(payload))
        except BadInput as e:
            return serve.Response(str(e), status_code=400)
        except ValueError as e:  # malformed JSON
            return serve.Response(f"invalid JSON body: {e}", status_code=400)


app = IrisClassifier.bind()
