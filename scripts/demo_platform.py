"""The demo's platform-mode part: an account holder of the *platform* (the stand-in plays it)
signs in there and manages a token with that session and the platform password, with
py-jelastic, through the Envoy that runs envoy-platform.yaml and `pat-admin serve
--platform-url`. pat-edge keeps neither the session nor the password.

    python scripts/demo_platform.py BASE_URL EMAIL PASSWORD
"""

import sys
import time

from jelastic import Jelastic
from jelastic.api.exceptions import JelasticApiError

base, email, password = sys.argv[1:4]
signed = Jelastic(base, token=None).users.Authentication.Signin(login=email, password=password)
auth = Jelastic(base, token=signed["session"]).users.Authentication
created = auth.CreateToken(description="platform mode", password=password, api_list=["env.control.StopEnv"])
token = created["token"]
key = token["key"]
time.sleep(0.2)  # every Envoy worker picks the pushed snapshot up within 50 ms
answer = Jelastic(base, token=key).environment.Control.StopEnv(env_name="my-project")
print(
    f"platform mode: signed in to the platform as {signed['email']} (uid {signed['uid']}); "
    f"token {token['id']} created with the platform password (checked by the platform), "
    f"StopEnv allowed for x-pat-user {answer['identity_headers']['x-pat-user'][0]}"
)
auth.DeleteTokens(ids=str(token["id"]), password=password)
time.sleep(0.2)
try:
    Jelastic(base, token=key).environment.Control.StopEnv(env_name="my-project")
    raise SystemExit("the deleted token still works")
except JelasticApiError as e:
    print(f"platform mode: token {token['id']} deleted, then denied ({e}); pat-admin stores no platform session or password")
auth.Signout()
