#!/usr/bin/env python3
"""Vendors one CustomResourceDefinition's OpenAPI v3 schema for deploy/check.py.

    vendor.py --repo OWNER/NAME --tag TAG --commit SHA --path PATH --crd NAME --version V CRD.yaml

reads the CRD named NAME from CRD.yaml (the file at PATH in that repository at that tag, as
published upstream; a file may hold many CRDs), takes the schema of version V
(spec.versions[].schema.openAPIV3Schema), drops its human-readable `description` texts (the
bulk of the file; nothing checked depends on them) and writes deploy/schemas/NAME_V.json with
the source named inside. Nothing else is changed: types, patterns, enums, required fields,
`x-kubernetes-*` extensions (among them the CEL rules deploy/check.py reports on) stay as
published.
"""

import argparse
import json
import os
import sys

import yaml


def strip_descriptions(node):
    if isinstance(node, dict):
        return {
            key: strip_descriptions(value)
            for key, value in node.items()
            if not (key == "description" and isinstance(value, str))
        }
    if isinstance(node, list):
        return [strip_descriptions(item) for item in node]
    return node


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("repo", "tag", "commit", "path", "crd", "version"):
        parser.add_argument("--" + flag, required=True)
    parser.add_argument("file")
    args = parser.parse_args()
    with open(args.file, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"
            and d["metadata"]["name"] == args.crd]
    if len(crds) != 1:
        sys.exit(f"{args.file}: {len(crds)} CRDs named {args.crd}")
    crd = crds[0]
    versions = [v for v in crd["spec"]["versions"] if v["name"] == args.version]
    if len(versions) != 1:
        sys.exit(f"{args.crd}: no version {args.version}")
    out = {
        "$comment": (
            f"The OpenAPI v3 schema of {args.crd} {args.version}, from github.com/{args.repo} "
            f"{args.tag} (commit {args.commit}), {args.path}, with its description texts "
            "removed; regenerate with deploy/schemas/vendor.py."
        ),
        "source": {
            "repository": f"https://github.com/{args.repo}",
            "tag": args.tag,
            "commit": args.commit,
            "path": args.path,
            "crd": args.crd,
            "group": crd["spec"]["group"],
            "kind": crd["spec"]["names"]["kind"],
            "version": args.version,
        },
        "schema": strip_descriptions(versions[0]["schema"]["openAPIV3Schema"]),
    }
    target = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                          f"{args.crd}_{args.version}.json")
    with open(target, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, sort_keys=True)
        f.write("\n")
    print(target)


if __name__ == "__main__":
    main()
