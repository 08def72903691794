"""A token's lastUsed as a real platform client, py-jelastic, reads it with GetTokens through
the real Envoy stack that `e2e/tests/usage_reports.rs` starts.

Run by that test as:  python py_jelastic_last_used.py BASE_URL LOGIN PASSWORD TOKEN_ID [NOT_BEFORE]
Waits (up to 60 s) until GetTokens shows the token with a lastUsed (`yyyy-MM-dd HH:mm:ss`,
UTC; no earlier than NOT_BEFORE, Unix seconds, when given), then prints it on the last line
of stdout. Exits non-zero when it never does.
"""

import sys
import time
from datetime import datetime, timezone

from jelastic import Jelastic

BASE, LOGIN, PASSWORD, TOKEN_ID = sys.argv[1:5]
NOT_BEFORE = int(sys.argv[5]) if len(sys.argv) > 5 else None


def unix(instant):
    return datetime.strptime(instant, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()


session = Jelastic(BASE, token=None).users.Authentication.Signin(login=LOGIN, password=PASSWORD)["session"]
auth = Jelastic(BASE, token=session).users.Authentication
deadline = time.monotonic() + 60
while True:
    tokens = auth.GetTokens(ids=[TOKEN_ID])["apiTokens"]
    assert [t["id"] for t in tokens] == [int(TOKEN_ID)], tokens
    last_used = tokens[0]["lastUsed"]
    if last_used is not None and (NOT_BEFORE is None or unix(last_used) >= NOT_BEFORE):
        break
    if time.monotonic() > deadline:
        raise AssertionError(f"no lastUsed (from {NOT_BEFORE} on) within 60 s: {tokens}")
    time.sleep(0.25)
print(last_used, flush=True)
