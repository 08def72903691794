"""A tiny HTTP client for scripts/demo (standard library only: no curl needed).

    python scripts/demo_http.py [--quiet] [--print-body] METHOD URL [--form BODY]
    python scripts/demo_http.py --unknown-token

Prints the request (with any session token masked) and the JSON answer. --quiet prints
nothing and only sets the exit status (0 for a 2xx answer); --print-body prints the raw body;
--form sends BODY as an application/x-www-form-urlencoded body.
--unknown-token prints a well-formed token (prefix, 30 random characters, CRC32 checksum)
that nobody issued.
"""

import json
import re
import secrets
import sys
import urllib.error
import urllib.request
import zlib

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def unknown_token():
    body = "pate_" + "".join(secrets.choice(BASE62) for _ in range(30))
    value, checksum = zlib.crc32(body.encode()), ""
    for _ in range(6):
        checksum = BASE62[value % 62] + checksum
        value //= 62
    return body + checksum


def mask(text):
    return re.sub(r"(pate_)[0-9A-Za-z]{32}([0-9A-Za-z]{4})", r"\1…\2", text)


def main(argv):
    if argv == ["--unknown-token"]:
        print(unknown_token())
        return 0
    form = None
    if "--form" in argv:
        at = argv.index("--form")
        if at + 1 >= len(argv):
            print(__doc__, file=sys.stderr)
            return 2
        form = argv[at + 1].encode()
        argv = argv[:at] + argv[at + 2 :]
    quiet = "--quiet" in argv
    raw = "--print-body" in argv
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    method, url = args
    request = urllib.request.Request(url, method=method, data=form)
    if form is not None:
        request.add_header("content-type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body, headers = response.status, response.read(), response.headers
    except urllib.error.HTTPError as error:
        status, body, headers = error.code, error.read(), error.headers
    except OSError as error:
        if not quiet:
            print(f"  {method} {mask(url)}\n  -> {error}")
        return 1
    if raw:
        sys.stdout.write(body.decode("utf-8", "replace"))
    elif not quiet:
        print(f"  {method} {mask(url)}" + (f"  (form body: {mask(form.decode())})" if form else ""))
        try:
            shown = json.dumps(json.loads(body), ensure_ascii=False)
        except ValueError:
            shown = body.decode("utf-8", "replace")
        retry = headers.get("retry-after")
        print(f"  -> HTTP {status}" + (f" (Retry-After: {retry})" if retry else "") + f" {mask(shown)}")
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
