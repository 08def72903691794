"""Platform mode driven by a real platform client, py-jelastic (PyPI `py-jelastic`, module
`jelastic`), through the real Envoy stack that `e2e/tests/platform_mode.rs` starts: account
holders sign in to the *platform* (the stand-in plays it) and manage their tokens with that
session and their platform password; pat-edge stores neither.

Run by that test as:
    python py_jelastic_platform_mode.py BASE PLATFORM ALICE BOB PASSWORD
(BASE: Envoy's public listener; PLATFORM: the stand-in, for its test hooks; ALICE, BOB: the
platform accounts' emails; PASSWORD: their platform password.) It exits non-zero when
anything is not as the README says, and prints the secrets it saw on its last line (`secrets:
…`) so the test can look for them in pat-edge's store and logs.
"""

import json
import sys
import time

import requests
from jelastic import Jelastic
from jelastic.api.exceptions import JelasticApiError, JelasticResourceNotFound

BASE, PLATFORM, ALICE, BOB, PASSWORD = sys.argv[1:6]
API = f"{BASE}/1.0/users/authentication/rest"
STOPENV = f"{BASE}/1.0/environment/control/rest/stopenv"
STARTENV = f"{BASE}/1.0/environment/control/rest/startenv"
CACHE = 1.0  # platform-session-cache, as the test set it
secrets = []


def step(text):
    print(f"-- {text}", flush=True)


def raises(call, kind=JelasticApiError):
    try:
        call()
    except kind as e:
        return str(e)
    raise AssertionError(f"{call} did not raise {kind.__name__}")


def platform(url, token):
    """A platform call through the public listener: the answer."""
    return requests.get(url, params={"session": token, "envName": "e2e"}, timeout=20).json()


def result(url, token):
    body = platform(url, token)
    return body.get("result"), body.get("source")


def eventually(check, what, limit=10.0):
    deadline = time.monotonic() + limit
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit} s: {what}")
        time.sleep(0.05)


def hook(path, **params):
    return requests.post(f"{PLATFORM}/_standin/{path}", params=params, timeout=10).json()


def calls():
    return requests.get(f"{PLATFORM}/_standin/calls", timeout=10).json()


def sign_in(email, password=PASSWORD):
    signed = Jelastic(BASE, token=None).users.Authentication.Signin(login=email, password=password)
    secrets.append(signed["session"])
    return signed


step("Signin to the platform with py-jelastic (Envoy routes it to the platform, not pat-admin)")
before = calls().get("Signin", 0)
message = raises(lambda: Jelastic(BASE, token=None).users.Authentication.Signin(login=ALICE, password="wrong"))
assert "wrong login or password" in message, message
signed = sign_in(ALICE)
assert signed["uid"] == 1001 and signed["email"] == ALICE, signed
assert calls()["Signin"] == before + 2, "both sign-ins reached the platform"
session = signed["session"]
auth = Jelastic(BASE, token=session).users.Authentication

step("CreateToken with the platform session and the platform password (its Signin confirms it)")
signins = calls()["Signin"]
created = auth.CreateToken(description="platform token", password=PASSWORD, api_list=["env.control.StopEnv"])
token = created["token"]
key = token["key"]
secrets.append(key)
assert created["publish"]["state"] == "published", created["publish"]
after = calls()
assert after["Signin"] == signins + 1 and after.get("Signout", 0) >= 1, after

step("the token: allowed in scope, denied out of it, and the platform sees who it is for")
eventually(lambda: result(STOPENV, key) == (0, None), "StopEnv allowed")
answer = platform(STOPENV, key)
assert answer["identity_headers"]["x-pat-user"] == ["1001"], answer
assert answer["identity_headers"]["x-pat-token-id"] == [str(token["id"])], answer
assert result(STARTENV, key) == (702, "JEL")
token_client = Jelastic(BASE, token=key)
token_client.environment.Control.StopEnv(env_name="e2e")
raises(lambda: token_client.environment.Control.StartEnv(env_name="e2e"))
raises(lambda: token_client.users.Authentication.GetTokens())

step("a wrong password changes nothing (the platform's Signin says no)")
listed = auth.GetTokens()["apiTokens"]
for call in [
    lambda: auth.CreateToken(description="x", password="not it", token_template="Marketplace"),
    lambda: auth.EditToken(id=token["id"], password="not it", description="changed"),
    lambda: auth.RegenerateToken(ids=str(token["id"]), password="not it"),
    lambda: auth.DeleteTokens(ids=str(token["id"]), password="not it"),
]:
    assert "wrong password" in raises(call)
assert [t["description"] for t in auth.GetTokens()["apiTokens"]] == [t["description"] for t in listed]
assert result(STOPENV, key) == (0, None), "the value still works"

step("RegenerateToken: the old value dead, the new one allowed (after the back-off of 4 failures)")
regenerated = auth.RegenerateToken(ids=str(token["id"]), password=PASSWORD)["token"]
new_key = regenerated["key"]
secrets.append(new_key)
eventually(lambda: result(STOPENV, key) == (701, "JEL"), "the old value is unknown")
eventually(lambda: result(STOPENV, new_key) == (0, None), "the new value is allowed")

step("two accounts never see each other's tokens")
bob = Jelastic(BASE, token=sign_in(BOB)["session"]).users.Authentication
bobs = bob.CreateToken(description="bob's", password=PASSWORD, token_template="maven-plugin")["token"]
secrets.append(bobs["key"])
assert [t["id"] for t in bob.GetTokens()["apiTokens"]] == [bobs["id"]]
assert [t["id"] for t in auth.GetTokens()["apiTokens"]] == [token["id"]]
raises(lambda: bob.GetTokens(ids=[str(token["id"])]), JelasticResourceNotFound)
raises(lambda: auth.DeleteTokens(ids=str(bobs["id"]), password=PASSWORD), JelasticResourceNotFound)

step("an email change keeps the account's tokens (accounts are keyed by uid)")
hook("account", uid=1001, email="alice.new@example.com")
time.sleep(CACHE + 0.2)
assert [t["id"] for t in auth.GetTokens()["apiTokens"]] == [token["id"]], "same tokens"
# Its password is now confirmed with the new email.
edited = auth.EditToken(id=token["id"], password=PASSWORD, description="after the email change")
assert edited["token"]["description"] == "after the email change", edited
hook("account", uid=1001, email=ALICE)

step("a session the platform signed out is refused once the cache time passed")
second = sign_in(ALICE)["session"]
second_auth = Jelastic(BASE, token=second).users.Authentication
assert [t["id"] for t in second_auth.GetTokens()["apiTokens"]] == [token["id"]]
second_auth.Signout()
time.sleep(CACHE + 0.2)
refused = requests.get(f"{API}/gettokens", params={"session": second}, timeout=20).json()
assert refused["result"] == 701 and refused["source"] == "pat-admin", refused

step("a suspended account may not change tokens, and its tokens leave the edges")
hook("account", uid=1002, status="SUSPENDED")
time.sleep(CACHE + 0.2)
message = raises(lambda: bob.CreateToken(description="x", password=PASSWORD, token_template="maven-plugin"))
assert "SUSPENDED" in message, message
eventually(lambda: result(STOPENV, bobs["key"])[0] == 701, "bob's token is off the edges")
hook("account", uid=1002, status="ENABLED")
time.sleep(CACHE + 0.2)
assert [t["id"] for t in bob.GetTokens()["apiTokens"]] == [bobs["id"]], "enabled again: back"
eventually(lambda: result(f"{BASE}/1.0/environment/binder/rest/getdomains", bobs["key"]) == (0, None), "bob's token is back")

step("DeleteTokens: the token is dead at the edge")
deleted = auth.DeleteTokens(ids=str(token["id"]), password=PASSWORD)
assert deleted["ids"] == [token["id"]], deleted
eventually(lambda: result(STOPENV, new_key) == (701, "JEL"), "removed")

print("py-jelastic platform-mode scenario: all steps passed", flush=True)
print("secrets: " + json.dumps(secrets + [PASSWORD]), flush=True)
