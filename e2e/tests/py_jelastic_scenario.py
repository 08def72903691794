"""The token API driven by a real platform client, py-jelastic (PyPI `py-jelastic`, module
`jelastic`), through the real Envoy stack that `e2e/tests/platform_api.rs` starts.

Run by that test as:  python py_jelastic_scenario.py BASE_URL LOGIN PASSWORD STORE_DB
It exits non-zero (an AssertionError, or the client's own exception) when anything is not as
the README says. Raw `requests` calls are used only where the client hides what is checked
(the result code and source of an error, POST form bodies).
"""

import hashlib
import sqlite3
import sys
import time
from datetime import datetime, timedelta, timezone

import requests
from jelastic import Jelastic
from jelastic.api.exceptions import JelasticApiError, JelasticResourceNotFound

BASE, LOGIN, PASSWORD, STORE_DB = sys.argv[1:5]
API = f"{BASE}/1.0/users/authentication/rest"
STOPENV = f"{BASE}/1.0/environment/control/rest/stopenv"
STARTENV = f"{BASE}/1.0/environment/control/rest/startenv"
GETENVS = f"{BASE}/1.0/environment/control/rest/getenvs"


def step(text):
    print(f"-- {text}", flush=True)


def raises(call, kind=JelasticApiError):
    try:
        call()
    except kind as e:
        return str(e)
    raise AssertionError(f"{call} did not raise {kind.__name__}")


def platform(url, token):
    """A platform call through the public listener: (result, source) of the answer."""
    body = requests.get(url, params={"session": token, "envName": "e2e"}, timeout=20).json()
    return body.get("result"), body.get("source")


def eventually(check, what, limit=5.0):
    deadline = time.monotonic() + limit
    while True:
        if check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit} s: {what}")
        time.sleep(0.05)


def without_last_used(tokens):
    return [{k: v for k, v in t.items() if k != "lastUsed"} for t in tokens]


def client(session):
    return Jelastic(BASE, token=session)


step("Signin with py-jelastic (through Envoy, the filter passes a request without a session)")
anonymous = Jelastic(BASE, token=None)
message = raises(lambda: anonymous.users.Authentication.Signin(login=LOGIN, password="wrong password"))
assert "wrong login or password" in message, message
signed = anonymous.users.Authentication.Signin(login=LOGIN, password=PASSWORD)
session = signed["session"]
assert session.startswith("pats_") and len(session) == 37, signed
auth = client(session).users.Authentication

step("GetTokenTemplates and GetTokenApiList")
templates = auth.GetTokenTemplates()["templates"]
assert {t["name"] for t in templates} == {"IDE Plugins", "Marketplace", "Maven Plugin"}, templates
ide = next(t for t in templates if t["name"] == "IDE Plugins")
assert any(i["method"] == "environment.Control.StopEnv" for i in ide["apiListItems"]), ide
found = auth.GetTokenApiList(show_private="true", sort_param="stopenv")["tokenPermissions"]
assert "environment.Control.StopEnv" in [p["method"] for p in found], found
assert all("stopenv" in p["method"].lower() for p in found), found
assert any(not p["isPublic"] for p in found), "showPrivate shows private methods"
public = auth.GetTokenApiList(sort_param="stopenv")["tokenPermissions"]
assert [p["method"] for p in public] == ["environment.Control.StopEnv"], public
everything = auth.GetTokenApiList()["tokenPermissions"]
assert everything and not any(
    p["method"].lower().startswith("users.authentication.") for p in everything
), "users.Authentication is never grantable"

step("CreateToken from a template (by its id as GetTokenTemplates reports it)")
created = auth.CreateToken(description="from a template", password=PASSWORD, token_template=ide["id"])
template_token = created["token"]
assert template_token["tokenTemplate"]["name"] == "IDE Plugins", template_token
assert template_token["key"].startswith("pate_"), "the value is shown on create"
assert created["publish"]["state"] == "published", created["publish"]

step("CreateToken from an apiList (a Python list, as py-jelastic puts it on the wire) with expiresAt")
expires = (datetime.now(timezone.utc) + timedelta(days=30)).replace(microsecond=0, tzinfo=None)
created = auth.CreateToken(
    description="stop only",
    password=PASSWORD,
    api_list=["env.control.StopEnv"],
    expires_at=expires,
)
custom = created["token"]
assert [i["method"] for i in custom["apiListItems"]] == ["environment.Control.StopEnv"], custom
assert custom["expiresAt"] == expires.strftime("%Y-%m-%d %H:%M:%S"), custom
assert "tokenTemplate" not in custom
key = custom["key"]

step("GetTokens lists both, never with a value")
listed = auth.GetTokens()["apiTokens"]
assert [t["id"] for t in listed] == [template_token["id"], custom["id"]], listed
assert all("key" not in t and t["lastUsed"] is None and t["isSystem"] is False for t in listed), listed
assert [t["id"] for t in auth.GetTokens(ids=[str(custom["id"])])["apiTokens"]] == [custom["id"]]

step("the token through the public listener: allowed in scope, denied out of it")
# Every Envoy worker picks the new snapshot up within its refresh interval (50 ms).
eventually(lambda: platform(STOPENV, key) == (0, None), "StopEnv allowed")
eventually(lambda: platform(STARTENV, key) == (702, "JEL"), "StartEnv denied (out of scope)")
eventually(lambda: platform(GETENVS, template_token["key"]) == (0, None), "the template token allowed")
for _ in range(10):  # then on every worker, every time
    assert platform(STOPENV, key) == (0, None)
    assert platform(STARTENV, key) == (702, "JEL")
token_client = Jelastic(BASE, token=key)
token_client.environment.Control.StopEnv(env_name="e2e")
raises(lambda: token_client.environment.Control.StartEnv(env_name="e2e"))

step("a token calling CreateToken is denied by the filter, whatever its scope")
denied = requests.get(
    f"{API}/createtoken",
    params={"session": key, "password": PASSWORD, "description": "minted", "apiList": "env.control.StopEnv"},
    timeout=20,
).json()
assert denied["result"] == 702 and denied["source"] == "JEL", denied
raises(lambda: token_client.users.Authentication.GetTokens())
assert len(auth.GetTokens()["apiTokens"]) == 2, "the token minted nothing"

step("a wrong password changes nothing")
for call in [
    lambda: auth.CreateToken(description="x", password="wrong password", token_template="Marketplace"),
    lambda: auth.EditToken(id=custom["id"], password="wrong password", description="changed"),
    lambda: auth.DeleteTokens(ids=str(custom["id"]), password="wrong password"),
    lambda: auth.RegenerateToken(ids=str(custom["id"]), password="wrong password"),
]:
    assert "wrong password" in raises(call)
# (lastUsed may have moved meanwhile: the edges report the uses above.)
assert without_last_used(auth.GetTokens()["apiTokens"]) == without_last_used(listed), "nothing changed"
assert platform(STOPENV, key) == (0, None), "the value still works"

step("EditToken: the scope changes and the edge follows")
edited = auth.EditToken(
    id=custom["id"], password=PASSWORD, api_list=["environment.Control.StartEnv"], description="start only"
)
assert edited["token"]["description"] == "start only" and "key" not in edited["token"], edited
assert edited["publish"]["state"] == "published", edited
eventually(lambda: platform(STARTENV, key) == (0, None), "StartEnv allowed after the edit")
eventually(lambda: platform(STOPENV, key) == (702, "JEL"), "StopEnv denied after the edit")

step("RegenerateToken (py-jelastic sends ids): the old value dead, the new one allowed")
regenerated = auth.RegenerateToken(ids=str(custom["id"]), password=PASSWORD)["token"]
new_key = regenerated["key"]
assert new_key != key and regenerated["id"] == custom["id"], regenerated
eventually(lambda: platform(STARTENV, key) == (701, "JEL"), "the old value is unknown")
eventually(lambda: platform(STARTENV, new_key) == (0, None), "the new value is allowed")

step("another account's id is not found; DeleteTokens of several, then *")
raises(lambda: auth.GetTokens(ids=["999999"]), JelasticResourceNotFound)
more = [
    auth.CreateToken(description=f"extra {i}", password=PASSWORD, token_template="maven-plugin")["token"]
    for i in range(3)
]
deleted = auth.DeleteTokens(ids=f"{more[0]['id']};{more[1]['id']}", password=PASSWORD)
assert deleted["ids"] == [more[0]["id"], more[1]["id"]], deleted
remaining = [t["id"] for t in auth.GetTokens()["apiTokens"]]
assert remaining == [template_token["id"], custom["id"], more[2]["id"]], remaining
# The other transport: POST with a form body (as jelastic-client sends).
form = requests.post(
    f"{API}/deletetokens", data={"session": session, "password": PASSWORD, "ids": "*"}, timeout=60
).json()
assert form["result"] == 0 and sorted(form["ids"]) == sorted(remaining), form
assert auth.GetTokens()["apiTokens"] == []
eventually(lambda: platform(STARTENV, new_key) == (701, "JEL"), "removed tokens are dead at the edge")

step("an expired session is refused; Signout ends one")
db = sqlite3.connect(STORE_DB)
with db:
    db.execute(
        "UPDATE sessions SET created_at = created_at - 86400 * 2 WHERE hash = ?",
        (hashlib.sha256(session.encode()).digest(),),
    )
db.close()
assert "expired" in raises(lambda: auth.GetTokens())
expired = requests.get(f"{API}/gettokens", params={"session": session}, timeout=20).json()
assert expired["result"] == 701 and expired["source"] == "pat-admin", expired
second = anonymous.users.Authentication.Signin(login=LOGIN, password=PASSWORD)["session"]
client(second).users.Authentication.Signout()
raises(lambda: client(second).users.Authentication.GetTokens())

print("py-jelastic scenario: all steps passed", flush=True)
