"""The demo's self-service part: an account holder manages a token with py-jelastic, a real
platform client, through Envoy and the token API (pat-admin serve --api-listen).

    python scripts/demo_api.py BASE_URL LOGIN PASSWORD
"""

import sys
import time

from jelastic import Jelastic
from jelastic.api.exceptions import JelasticApiError

base, login, password = sys.argv[1:4]
signed = Jelastic(base, token=None).users.Authentication.Signin(login=login, password=password)
session = signed["session"]
print(f"Signin: a login session for {signed['login']} ({session[:5]}…, shown masked)")
auth = Jelastic(base, token=session).users.Authentication

created = auth.CreateToken(
    description="created by py-jelastic",
    password=password,
    api_list=["env.control.StopEnv", "env.control.GetEnvs"],
)
token = created["token"]
key = token["key"]
methods = ", ".join(item["method"] for item in token["apiListItems"])
print(f"CreateToken: token {token['id']} ({key[:5]}…{key[-4:]}), scope {methods}")
print(f"  publish: {created['publish']['state']} as snapshot version {created['publish']['version']}")



def settle():
    # The edge accepted the push; its workers pick the snapshot up within 50 ms.
    time.sleep(0.2)


with_token = Jelastic(base, token=key)
settle()
answer = with_token.environment.Control.StopEnv(env_name="my-project")
print(f"StopEnv with the new token: result {answer['result']} for user {answer.get('user')}")
try:
    with_token.users.Authentication.CreateToken(description="minted", password=password, token_template="Marketplace")
except JelasticApiError as e:
    print(f"CreateToken with the token itself: denied by the filter ({e})")

listed = auth.GetTokens()["apiTokens"]
print("GetTokens:", ", ".join(f"{t['id']} {t['description']!r}" for t in listed))
deleted = auth.DeleteTokens(ids=str(token["id"]), password=password)
print(f"DeleteTokens {deleted['ids']}: publish {deleted['publish']['state']}")
settle()
try:
    with_token.environment.Control.StopEnv(env_name="my-project")
except JelasticApiError as e:
    print(f"StopEnv with the deleted token: denied ({e})")
auth.Signout()
