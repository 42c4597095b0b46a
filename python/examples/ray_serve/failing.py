# A deployment whose constructor raises: serve.run reports the deploy error.
from ray import serve


@serve.deployment
class Broken:
    def __init__(self):
        raise ValueError("model file missing")

    def __call__(self):
        return "unreachable"


if __name__ == "__main__":
    try:
        serve.run(Broken.bind(), name="broken")
    except RuntimeError as e:
        print("deploy error:", str(e).splitlines()[0])
        print("mentions cause:", "model file missing" in str(e))
    try:
        serve.run(Broken, name="not-an-app")
    except TypeError as e:
        print("type error:", e)
