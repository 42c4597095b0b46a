"""Ray Serve's fruit stand, ported with a one-line import change: an ingress
deployment composes two others through DeploymentHandles, and prices live
in user_config so they change without restarting replicas.

    curl -X POST http://<proxy>:8000/fruit -d '["MANGO", 2]'   # → 6
"""

from rayk8s import serve


@serve.deployment(user_config={"price": 3})
class MangoStand:
    def __init__(self):
        self.price = 3

    def reconfigure(self, config):
        self.price = config.get("price", 3)

    def check_price(self, amount):
        return self.price * amount


@serve.deployment(user_config={"price": 2})
class OrangeStand:
    def __init__(self):
        self.price = 2

    def reconfigure(self, config):
        self.price = config.get("price", 2)

    async def check_price(self, amount):
        return self.price * amount


@serve.deployment(num_replicas=2)
class FruitMarket:
    def __init__(self, mango_stand, orange_stand):
        self.stands = {"MANGO": mango_stand, "ORANGE": orange_stand}

    async def __call__(self, request):
        fruit, amount = await request.json()
        stand = self.stands.get(fruit.upper())
        if stand is None:
            return serve.Response(f"Unknown fruit {fruit!r}", status_code=404)
        return await stand.check_price.remote(amount)


app = FruitMarket.bind(MangoStand.bind(), OrangeStand.bind())
