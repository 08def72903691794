"""A tiny HTTP client for scripts/demo (standard library only: no curl needed).

    python scripts/demo_http.py [--quiet] [--print-body] METHOD URL

Prints the request (with any session token masked) and the JSON answer. --quiet prints
nothing and only sets the exit status (0 for a 2xx answer); --print-body prints the raw body.
"""

import json
import re
import sys
import urllib.error
import urllib.request


def mask(text):
    return re.sub(r"(pate_)[0-9A-Za-z]{32}([0-9A-Za-z]{4})", r"\1…\2", text)


def main(argv):
    quiet = "--quiet" in argv
    raw = "--print-body" in argv
    args = [a for a in argv if not a.startswith("--")]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    method, url = args
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    except OSError as error:
        if not quiet:
            print(f"  {method} {mask(url)}\n  -> {error}")
        return 1
    if raw:
        sys.stdout.write(body.decode("utf-8", "replace"))
    elif not quiet:
        print(f"  {method} {mask(url)}")
        try:
            shown = json.dumps(json.loads(body), ensure_ascii=False)
        except ValueError:
            shown = body.decode("utf-8", "replace")
        print(f"  -> HTTP {status} {mask(shown)}")
    return 0 if 200 <= status < 300 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
