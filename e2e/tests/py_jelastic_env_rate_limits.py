"""Tokens limited to environments and tokens with a rate limit, made through the token API and
used with a real platform client, py-jelastic (PyPI `py-jelastic`, module `jelastic`), through
the real Envoy stack that `e2e/tests/env_rate_limits.rs` starts.

Run by that test as:  python py_jelastic_env_rate_limits.py BASE_URL LOGIN PASSWORD STATS_URL
It exits non-zero (an AssertionError, or the client's own exception) when anything is not as
the README says, and prints the ids of the tokens it made on its last line.

py-jelastic 0.1.6's `users.Authentication.CreateToken`/`EditToken` take only the platform's
own parameters (description, password, tokenTemplate, apiList, expiresAt, ruk), so the tokens
are made and edited with raw `requests` POSTs of form bodies (as jelastic-client sends them);
everything else goes through py-jelastic's own calls. Raw requests are also used where the
client hides what is checked (the result code, `Retry-After`, fresh connections).
"""

import sys
import time

import requests
from jelastic import Jelastic
from jelastic.api.exceptions import JelasticApiError

BASE, LOGIN, PASSWORD, STATS = sys.argv[1:5]
API = f"{BASE}/1.0/users/authentication/rest"
STOPENV = f"{BASE}/1.0/environment/control/rest/stopenv"
GETENVS = f"{BASE}/1.0/environment/control/rest/getenvs"


def step(text):
    print(f"-- {text}", flush=True)


def raises(call, kind=JelasticApiError):
    try:
        call()
    except kind as e:
        return str(e)
    raise AssertionError(f"{call} did not raise {kind.__name__}")


def eventually(check, what, limit=5.0):
    deadline = time.monotonic() + limit
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit} s: {what}")
        time.sleep(0.05)


def stat(reason):
    """Envoy's counter of denials for `reason` (the admin listener's /stats)."""
    name = f"wasmcustom.pat_edge.requests.denied.{reason}: "
    for line in requests.get(STATS, timeout=10).text.splitlines():
        if line.startswith(name):
            return int(line[len(name):])
    return 0


def raw(url, token, **params):
    """One platform call on a fresh connection: (HTTP response, JSON body)."""
    response = requests.get(url, params={"session": token, **params}, timeout=20)
    return response, response.json()


def api_form(method, **fields):
    """A token API call as a POST form body; its answer, which must be result 0."""
    answer = requests.post(f"{API}/{method.lower()}", data=fields, timeout=60).json()
    assert answer["result"] == 0, answer
    return answer


step("Signin with py-jelastic")
session = Jelastic(BASE, token=None).users.Authentication.Signin(login=LOGIN, password=PASSWORD)["session"]
auth = Jelastic(BASE, token=session).users.Authentication

step("CreateToken with envNames=prod,staging and another with rateLimit=5/s (POST form bodies)")
created = api_form(
    "CreateToken",
    session=session,
    password=PASSWORD,
    description="prod and staging",
    apiList="environment.Control.StopEnv,environment.Control.StartEnv,environment.Control.GetEnvs",
    envNames="prod,Staging",
)
env_token = created["token"]
assert env_token["envNames"] == ["prod", "staging"], env_token
assert env_token["rateLimit"] is None and env_token["effectiveRateLimit"] is None, env_token
assert created["publish"]["state"] == "published", created["publish"]
created = api_form(
    "CreateToken",
    session=session,
    password=PASSWORD,
    description="five a second",
    apiList="environment.Control.StopEnv",
    rateLimit="5/s",
)
rate_token = created["token"]
assert rate_token["rateLimit"] == "5/s" and rate_token["effectiveRateLimit"] == "5/s", rate_token
assert rate_token["envNames"] is None, rate_token
assert created["publish"]["state"] == "published", created["publish"]
# py-jelastic's GetTokens shows both fields (the client passes what it does not know).
listed = {t["id"]: t for t in auth.GetTokens()["apiTokens"]}
assert listed[env_token["id"]]["envNames"] == ["prod", "staging"], listed
assert listed[rate_token["id"]]["rateLimit"] == "5/s", listed

step("the environment-limited token with py-jelastic: its environments only")
env_client = Jelastic(BASE, token=env_token["key"]).environment.Control


def stop_prod_allowed():
    try:
        return env_client.StopEnv(env_name="prod")["result"] == 0
    except JelasticApiError:
        return False


# Every Envoy worker picks the pushed snapshot up within its refresh interval.
eventually(stop_prod_allowed, "StopEnv on prod allowed")
not_allowed, not_env_method = stat("environment_not_allowed"), stat("not_an_environment_method")
for _ in range(5):
    answer = env_client.StopEnv(env_name="prod")
    assert answer["result"] == 0 and answer["via"] == "token", answer
    assert answer["token_id"] == str(env_token["id"]), answer
    assert env_client.StartEnv(env_name="Staging")["result"] == 0, "any case of a listed name"
    message = raises(lambda: env_client.StopEnv(env_name="dev"))
    assert "may not act on environment dev" in message, message
    message = raises(lambda: env_client.GetEnvs())
    assert "does not act on one environment" in message, message
denied = raw(STOPENV, env_token["key"], envName="dev")[1]
assert denied["result"] == 704 and denied["source"] == "JEL", denied
denied = raw(GETENVS, env_token["key"])[1]
assert denied["result"] == 704 and denied["source"] == "JEL", denied
eventually(
    lambda: stat("environment_not_allowed") == not_allowed + 6
    and stat("not_an_environment_method") == not_env_method + 6,
    "Envoy counted the environment denials",
)

step("the rate-limited token: 20 calls as fast as py-jelastic makes them, about 5 admitted")
rate_client = Jelastic(BASE, token=rate_token["key"]).environment.Control
eventually(lambda: raw(STOPENV, rate_token["key"], envName="x")[1]["result"] == 0, "the token at the edge")
time.sleep(1.2)  # a full bucket again


def burst(call, n=20):
    admitted = refused = 0
    started = time.monotonic()
    for _ in range(n):
        try:
            assert call()["result"] == 0
            admitted += 1
        except JelasticApiError as e:
            assert "rate limit of 5/s" in str(e), str(e)
            refused += 1
    return admitted, refused, time.monotonic() - started


limited_before = stat("rate_limited")
admitted, refused, took = burst(lambda: rate_client.StopEnv(env_name="x"))
print(f"   py-jelastic: {admitted} admitted, {refused} refused in {took * 1000:.0f} ms", flush=True)
# The burst (5), and at most one more per 200 ms that the calls took.
assert 5 <= admitted <= 5 + int(took / 0.2) + 1, (admitted, took)
assert refused == 20 - admitted and refused >= 10, (refused, took)
eventually(lambda: stat("rate_limited") == limited_before + refused, "Envoy counted the refusals")

step("the refusal: result 705, HTTP 200, Retry-After")
response, body = raw(STOPENV, rate_token["key"], envName="x")
assert response.status_code == 200, response.status_code
assert body["result"] == 705 and body["source"] == "JEL", body
assert response.headers.get("Retry-After") == "1", dict(response.headers)

step("after a second, admitted again")
time.sleep(1.1)
assert rate_client.StopEnv(env_name="x")["result"] == 0

step("the budget is the edge's, whichever worker a connection lands on (fresh connections)")
time.sleep(1.2)
limited_before = stat("rate_limited")
started = time.monotonic()
results = [raw(STOPENV, rate_token["key"], envName="x")[1]["result"] for _ in range(20)]
took = time.monotonic() - started
admitted, refused = results.count(0), results.count(705)
print(f"   fresh connections: {admitted} admitted, {refused} refused in {took * 1000:.0f} ms", flush=True)
assert admitted + refused == 20, results
assert 5 <= admitted <= 5 + int(took / 0.2) + 1, (results, took)
eventually(lambda: stat("rate_limited") == limited_before + refused, "Envoy counted the refusals")

step("EditToken with an empty envNames: any environment, at the edge too")
edited = api_form("EditToken", session=session, password=PASSWORD, id=env_token["id"], envNames="")
assert edited["token"]["envNames"] is None, edited
assert edited["publish"]["state"] == "published", edited["publish"]


def dev_allowed():
    try:
        return env_client.StopEnv(env_name="dev")["result"] == 0
    except JelasticApiError:
        return False


# Every worker holds the edit once ten calls in a row are let through.
eventually(lambda: all(dev_allowed() for _ in range(10)), "StopEnv on dev allowed after the edit")
for _ in range(5):
    assert env_client.StopEnv(env_name="dev")["result"] == 0
    assert env_client.GetEnvs()["result"] == 0, "GetEnvs allowed without a list"

step("EditToken with envNames again, then rateLimit=none: the limit gone at the edge")
edited = api_form("EditToken", session=session, password=PASSWORD, id=env_token["id"], envNames="qa")
assert edited["token"]["envNames"] == ["qa"], edited
eventually(lambda: raw(STOPENV, env_token["key"], envName="prod")[1]["result"] == 704, "prod denied after the edit")
assert env_client.StopEnv(env_name="qa")["result"] == 0
edited = api_form("EditToken", session=session, password=PASSWORD, id=rate_token["id"], rateLimit="none")
assert edited["token"]["rateLimit"] is None and edited["token"]["effectiveRateLimit"] is None, edited
time.sleep(1.2)
eventually(lambda: burst(lambda: rate_client.StopEnv(env_name="x"), 30)[0] == 30, "no limit after the edit")

print(f"ids {env_token['id']} {rate_token['id']}", flush=True)
print("py-jelastic environments and rate limits: all steps passed", flush=True)
