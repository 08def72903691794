#!/usr/bin/env python3
"""Checks deploy/'s Kubernetes manifests the way an API server and a careful reviewer would.

    check.py [--fill] [--plugin-configs] [DIR]

DIR (default: the directory of this file) holds the manifests (`*.yaml` but
`envoy-remote.yaml`, which is Envoy's; `schemas/` is skipped). With --fill the templates'
placeholders (${IMAGE_DIGEST}, ${MODULE_SHA256}, ...) are first filled with well-formed sample
values, as scripts/package fills them with real ones. Every document is checked:

1. Custom resources (Istio's WasmPlugin; Envoy Gateway's EnvoyExtensionPolicy, EnvoyPatchPolicy,
   EnvoyProxy) against the OpenAPI v3 schemas of their published CRDs, vendored in schemas/
   (see schemas/README.md), with a JSON Schema validator (jsonschema, Draft 2020-12): types,
   enums, patterns, required fields, nullable; unknown fields are errors, as with `kubectl
   apply`'s strict field validation (objects that do not preserve unknown fields get
   `additionalProperties: false`, as kubeconform's --strict does). The CRDs' CEL rules
   (x-kubernetes-validations) cannot be run here: every rule that applies to a field the
   manifests set must have a Python translation below (RULES), which is checked; a rule
   without one fails the check, so a new field cannot slip through unjudged.
2. Core types (Namespace, PersistentVolumeClaim, Deployment, Service) against the Kubernetes
   1.37 JSON schemas shipped by the kubernetes-validate package, strict (unknown fields are
   errors).
3. pat-edge's own rules: fail closed (FAIL_CLOSE, failOpen: false); the module pinned by
   sha256, and the url pinning the same digest; the keys (PAT_PUBLIC_KEYS, PAT_EDGE_KEY)
   passed from the host environment to the VM and into the proxy from the Secret
   pat-edge-keys, never a literal key anywhere; the filter's configuration without keys or a
   push endpoint, and its cluster the one that reaches the pat-origin Service; the origin
   serving the module.

With --plugin-configs it prints, one JSON line per plugin, the filter's configuration and
the environment variables the manifest passes to the VM (e2e/tests/deploy_manifests.rs feeds
them to the filter's own configuration parser). Exit status 1 when anything fails.
"""

import copy
import json
import os
import re
import sys

import jsonschema
import kubernetes_validate
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
KUBERNETES_VERSION = "1.37.0"
SECRET = "pat-edge-keys"
KEYS = ("PAT_PUBLIC_KEYS", "PAT_EDGE_KEY")
CORE_KINDS = {
    ("v1", "Namespace"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
}
SAMPLES = {
    "IMAGE": "registry.example.com/pat-edge",
    "ORIGIN_IMAGE": "registry.example.com/pat-admin",
    "TAG": "0.1.0",
    "IMAGE_DIGEST": "5" * 64,
    "MODULE_SHA256": "a" * 64,
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _has(obj, key):
    return isinstance(obj, dict) and key in obj


# The CEL rules of the vendored CRDs that the manifests reach, translated (the rule text as
# published, its meaning in Python). `self` is the value at the rule's place.
RULES = {
    # Istio WasmPlugin
    '(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1':
        lambda s: sum(_has(s, k) for k in ("selector", "targetRef", "targetRefs")) <= 1,
    'self.all(key, !key.contains("*"))':
        lambda s: all("*" not in k for k in s),
    'self.all(key, key.size() != 0)':
        lambda s: all(len(k) != 0 for k in s),
    '!self.contains("*")':
        lambda s: "*" not in s,
    '(has(self.valueFrom) ? self.valueFrom : "") != "HOST" || !has(self.value)':
        lambda s: s.get("valueFrom", "") != "HOST" or "value" not in s,
    'isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : (isURL("http://" + self) &&\nurl("http://" + self).getScheme() in ["", "http", "https", "oci", "file"])':
        lambda s: re.match(r"^(https?|oci|file)://[^/\s]+", s) is not None
        or re.match(r"^[^:/\s]+(:[0-9]+)?(/\S*)?$", s) is not None,
    # Envoy Gateway EnvoyExtensionPolicy
    '(has(self.targetRef) && !has(self.targetRefs)) || (!has(self.targetRef) && has(self.targetRefs)) || (has(self.targetSelectors) && self.targetSelectors.size() > 0) ':
        lambda s: (_has(s, "targetRef") != _has(s, "targetRefs"))
        or len(s.get("targetSelectors", [])) > 0,
    "has(self.targetRef) ? self.targetRef.group == 'gateway.networking.k8s.io' : true":
        lambda s: not _has(s, "targetRef") or s["targetRef"].get("group") == "gateway.networking.k8s.io",
    "has(self.targetRef) ? self.targetRef.kind in ['Gateway', 'ListenerSet', 'HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'] : true":
        lambda s: not _has(s, "targetRef") or s["targetRef"].get("kind") in ROUTABLE,
    "has(self.targetRefs) ? self.targetRefs.all(ref, ref.group == 'gateway.networking.k8s.io') : true ":
        lambda s: all(r.get("group") == "gateway.networking.k8s.io" for r in s.get("targetRefs", [])),
    "has(self.targetRefs) ? self.targetRefs.all(ref, ref.kind in ['Gateway', 'ListenerSet', 'HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute']) : true ":
        lambda s: all(r.get("kind") in ROUTABLE for r in s.get("targetRefs", [])),
    "!has(self.mergeType) || ((!has(self.targetRef) || self.targetRef.kind in ['HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute']) && (!has(self.targetRefs) || self.targetRefs.all(ref, ref.kind in ['HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'])) && (!has(self.targetSelectors) || self.targetSelectors.all(sel, sel.kind in ['HTTPRoute', 'GRPCRoute', 'UDPRoute', 'TCPRoute', 'TLSRoute'])))":
        lambda s: not _has(s, "mergeType") or (
            (not _has(s, "targetRef") or s["targetRef"].get("kind") in ROUTES)
            and all(r.get("kind") in ROUTES for r in s.get("targetRefs", []))
            and all(r.get("kind") in ROUTES for r in s.get("targetSelectors", []))),
    "self.type == 'HTTP' ? has(self.http) : !has(self.http)":
        lambda s: _has(s, "http") == (s.get("type") == "HTTP"),
    "self.type == 'Image' ? has(self.image) : !has(self.image)":
        lambda s: _has(s, "image") == (s.get("type") == "Image"),
    # Envoy Gateway EnvoyProxy
    '!(has(self.mergeGateways) && self.mergeGateways && has(self.mergeBackends))':
        lambda s: not (s.get("mergeGateways") is True and "mergeBackends" in s),
    '!has(self.image) || !has(self.imageRepository)':
        lambda s: not (_has(s, "image") and _has(s, "imageRepository")),
    "self.type == 'JSONPatch' ? self.jsonPatches.size() > 0 : has(self.value)":
        lambda s: len(s.get("jsonPatches") or []) > 0 if s.get("type", "Replace") == "JSONPatch"
        else _has(s, "value"),
    "((has(self.envoyDeployment) && !has(self.envoyDaemonSet)) || (!has(self.envoyDeployment) && has(self.envoyDaemonSet))) || (!has(self.envoyDeployment) && !has(self.envoyDaemonSet))":
        lambda s: not (_has(s, "envoyDeployment") and _has(s, "envoyDaemonSet")),
    "((has(self.envoyHpa) && !has(self.envoyDaemonSet)) || (!has(self.envoyHpa) && has(self.envoyDaemonSet))) || (!has(self.envoyHpa) && !has(self.envoyDaemonSet))":
        lambda s: not (_has(s, "envoyHpa") and _has(s, "envoyDaemonSet")),
}
ROUTES = ["HTTPRoute", "GRPCRoute", "UDPRoute", "TCPRoute", "TLSRoute"]
ROUTABLE = ["Gateway", "ListenerSet"] + ROUTES


class Failures:
    def __init__(self):
        self.messages = []

    def add(self, where, message):
        self.messages.append(f"{where}: {message}")


def load_crd_schemas():
    schemas = {}
    for name in sorted(os.listdir(os.path.join(HERE, "schemas"))):
        if not name.endswith(".json"):
            continue
        with open(os.path.join(HERE, "schemas", name), encoding="utf-8") as f:
            vendored = json.load(f)
        source = vendored["source"]
        key = (f"{source['group']}/{source['version']}", source["kind"])
        schemas[key] = vendored
    return schemas


def strict_json_schema(node):
    """An OpenAPI v3 (Kubernetes structural) schema as JSON Schema, unknown fields refused."""
    if isinstance(node, list):
        return [strict_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-") or key in ("nullable", "format"):
            continue
        if key in ("properties", "patternProperties", "$defs"):
            out[key] = {k: strict_json_schema(v) for k, v in value.items()}
        else:
            out[key] = strict_json_schema(value)
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    is_object = node.get("type") == "object" or "properties" in node
    if (is_object and "properties" in node and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def cel_rules(schema, value, path, found):
    """Every CEL rule of `schema` whose place `value` reaches: (path, rule, message)."""
    if not isinstance(schema, dict):
        return
    for rule in schema.get("x-kubernetes-validations", []):
        found.append((path, rule["rule"], rule.get("message", "")))
    if isinstance(value, dict):
        for key, sub in value.items():
            if key in schema.get("properties", {}):
                cel_rules(schema["properties"][key], sub, f"{path}.{key}", found)
            elif isinstance(schema.get("additionalProperties"), dict):
                cel_rules(schema["additionalProperties"], sub, f"{path}.{key}", found)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            cel_rules(schema["items"], item, f"{path}[{i}]", found)
    for combinator in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(combinator, []):
            cel_rules(sub, value, path, found)


def at(document, path):
    node = document
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]", path):
        node = node[part[0]] if part[0] else node[int(part[1])]
    return node


def check_metadata(where, doc, failures):
    meta = doc.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        failures.add(where, "metadata.name is required")
        return
    if not DNS_SUBDOMAIN.match(meta["name"]) or len(meta["name"]) > 253:
        failures.add(where, f"metadata.name {meta['name']!r} is not a DNS subdomain")
    namespace = meta.get("namespace")
    if namespace is not None and not DNS_LABEL.match(namespace):
        failures.add(where, f"metadata.namespace {namespace!r} is not a DNS label")
    allowed = {"name", "namespace", "labels", "annotations"}
    for key in meta:
        if key not in allowed:
            failures.add(where, f"metadata.{key}: not expected in a manifest")


def check_custom_resource(where, doc, vendored, failures):
    schema = vendored["schema"]
    check_metadata(where, doc, failures)
    body = {k: v for k, v in doc.items() if k != "metadata"}
    json_schema = strict_json_schema(copy.deepcopy(schema))
    json_schema["properties"]["metadata"] = {"type": "object"}
    for field in ("apiVersion", "kind"):
        json_schema.setdefault("properties", {}).setdefault(field, {"type": "string"})
    validator = jsonschema.Draft202012Validator(json_schema)
    for error in sorted(validator.iter_errors(dict(body, metadata={})), key=str):
        place = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        failures.add(where, f"schema: {place or '.'}: {error.message}")
    found = []
    cel_rules(schema, body, "", found)
    for path, rule, message in found:
        check = RULES.get(rule)
        if check is None:
            failures.add(where, f"CEL rule at {path or '.'} has no translation here: {rule!r}")
        elif not check(at(body, path)):
            failures.add(where, f"CEL rule at {path or '.'}: {message} ({rule})")
    return len(found)


def check_core(where, doc, failures):
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        place = ".".join(str(p) for p in e.path)
        failures.add(where, f"Kubernetes {KUBERNETES_VERSION} schema: {place}: {e.message}")
    check_metadata(where, doc, failures)


def literal_keys(node, path, failures, where):
    """No key material in any value: public keys are `ed25519:…`, edge keys secret text."""
    if isinstance(node, dict):
        for key, value in node.items():
            literal_keys(value, f"{path}.{key}", failures, where)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            literal_keys(value, f"{path}[{i}]", failures, where)
    elif isinstance(node, str) and ("ed25519:" in node or "ed25519-secret" in node):
        failures.add(where, f"{path}: a key written into the manifest; keys come from the Secret {SECRET}")


def env_from_secret(where, env, failures):
    by_name = {e.get("name"): e for e in env or []}
    for key in KEYS:
        entry = by_name.get(key)
        ref = ((entry or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
        if entry is None or "value" in entry or ref.get("name") != SECRET or ref.get("key") != key:
            failures.add(where, f"env {key}: must come from secretKeyRef {{name: {SECRET}, key: {key}}}")


def plugin_config_rules(where, config, failures):
    if not isinstance(config, dict):
        failures.add(where, "the filter's configuration must be an object")
        return
    for forbidden in ("public_keys", "push"):
        if forbidden in config:
            failures.add(where, f"the filter's configuration must not set {forbidden}")
    for section in ("origin", "usage"):
        if not isinstance(config.get(section), dict):
            failures.add(where, f"the filter's configuration needs {section} (edges pull and report)")
    for section in ("public_keys_env",):
        if config.get(section, KEYS[0]) != KEYS[0]:
            failures.add(where, f"{section}: keep {KEYS[0]}")
    if (config.get("usage") or {}).get("key_env", KEYS[1]) != KEYS[1]:
        failures.add(where, f"usage.key_env: keep {KEYS[1]}")


def pinned(where, url, sha256, failures, oci_digest):
    if not isinstance(sha256, str) or not HEX64.match(sha256):
        failures.add(where, "the module must be pinned: sha256 (64 lowercase hex digits)")
        return
    if oci_digest and not url.endswith(f"@sha256:{sha256}"):
        failures.add(where, f"url {url!r} must pin the same digest as sha256 (…@sha256:{sha256})")


# Envoy refuses the answer to a filter's HTTP call over 32 MiB unless its runtime raises the
# limit; the origin's full answer is ~42 MB at 1,000,000 tokens (envoy.yaml allows 256 MiB).
RESPONSE_LIMIT_KEY = "http.async_response_buffer_limit"
RESPONSE_LIMIT_MIN = 64 * 1024 * 1024


def response_limit(where, value, failures):
    try:
        ok = int(value) >= RESPONSE_LIMIT_MIN
    except (TypeError, ValueError):
        ok = False
    if not ok:
        failures.add(where, f"the Envoy runtime must set {RESPONSE_LIMIT_KEY} to at least "
                            f"{RESPONSE_LIMIT_MIN} (the origin's full answer is ~42 MB at 1,000,000 "
                            f"tokens; Envoy refuses more than 32 MiB by default): found {value!r}")


def origin_service(docs):
    for _, doc in docs:
        if doc.get("kind") == "Service" and doc["metadata"]["name"] == "pat-origin":
            return doc
    return None


def main(argv):
    fill = "--fill" in argv
    print_configs = "--plugin-configs" in argv
    args = [a for a in argv if not a.startswith("--")]
    root = os.path.abspath(args[0]) if args else HERE
    failures = Failures()
    crds = load_crd_schemas()
    docs = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if d != "schemas")
        for name in sorted(files):
            if not name.endswith(".yaml") or name == "envoy-remote.yaml":
                continue
            path = os.path.join(directory, name)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            if fill:
                for key, value in SAMPLES.items():
                    text = text.replace("${" + key + "}", value)
            relative = os.path.relpath(path, root)
            if "${" in text:
                failures.add(relative, "a placeholder is left (use --fill, or scripts/package)")
            for i, doc in enumerate(yaml.safe_load_all(text)):
                if doc is not None:
                    docs.append((f"{relative}#{i}", doc))
    if not docs:
        failures.add(root, "no manifests")
    kinds = {}
    rules_checked = 0
    plugins = []
    service = origin_service(docs)
    if service is None:
        failures.add(root, "no Service pat-origin")
    for where, doc in docs:
        key = (doc.get("apiVersion"), doc.get("kind"))
        kinds[key[1]] = kinds.get(key[1], 0) + 1
        if key in crds:
            rules_checked += check_custom_resource(where, doc, crds[key], failures)
        elif key in CORE_KINDS:
            check_core(where, doc, failures)
        else:
            failures.add(where, f"no schema here for {key[0]} {key[1]}")
            continue
        literal_keys(doc, "", failures, where)
        spec = doc.get("spec") or {}
        namespace = doc["metadata"].get("namespace", "")
        if key[1] == "WasmPlugin":
            if spec.get("failStrategy") != "FAIL_CLOSE":
                failures.add(where, "failStrategy must be FAIL_CLOSE")
            url = spec.get("url", "")
            pinned(where, url, spec.get("sha256"), failures, url.startswith("oci://"))
            env = {e.get("name"): e for e in (spec.get("vmConfig") or {}).get("env", [])}
            for name in KEYS:
                entry = env.get(name) or {}
                if entry.get("valueFrom") != "HOST" or "value" in entry:
                    failures.add(where, f"vmConfig.env {name}: valueFrom: HOST (from the proxy's environment)")
            config = spec.get("pluginConfig")
            plugin_config_rules(where, config, failures)
            if service is not None and isinstance(config, dict):
                svc = service["metadata"]
                port = next((p["port"] for p in service["spec"]["ports"] if p["name"] == "http-origin"), None)
                cluster = f"outbound|{port}||{svc['name']}.{svc['namespace']}.svc.cluster.local"
                for section in ("origin", "usage"):
                    if (config.get(section) or {}).get("cluster") != cluster:
                        failures.add(where, f"pluginConfig.{section}.cluster must be Istio's cluster of the origin, {cluster}")
            plugins.append({"file": where, "kind": "WasmPlugin", "config": config,
                            "env": sorted(n for n, e in env.items() if e.get("valueFrom") == "HOST")})
        elif key[1] == "EnvoyExtensionPolicy":
            for i, wasm in enumerate(spec.get("wasm", [])):
                here = f"{where} wasm[{i}]"
                if wasm.get("failOpen") is not False:
                    failures.add(here, "failOpen: false must be said")
                code = wasm.get("code") or {}
                source = code.get("image") or code.get("http") or {}
                pinned(here, source.get("url", ""), source.get("sha256"), failures,
                       code.get("type") == "Image")
                host_keys = (wasm.get("env") or {}).get("hostKeys", [])
                for name in KEYS:
                    if name not in host_keys:
                        failures.add(here, f"env.hostKeys must pass {name}")
                plugin_config_rules(here, wasm.get("config"), failures)
                plugins.append({"file": here, "kind": "EnvoyExtensionPolicy",
                                "config": wasm.get("config"), "env": sorted(host_keys)})
        elif key[1] == "EnvoyProxy":
            container = (((spec.get("provider") or {}).get("kubernetes") or {})
                         .get("envoyDeployment") or {}).get("container") or {}
            env_from_secret(where, container.get("env"), failures)
            patches = (spec.get("bootstrap") or {}).get("jsonPatches") or []
            limit = next((p.get("value") for p in patches
                          if p.get("op") == "add"
                          and p.get("path", "").startswith("/layered_runtime/layers/")
                          and p.get("path", "").endswith("/static_layer/" + RESPONSE_LIMIT_KEY)),
                         None)
            response_limit(where + " bootstrap", limit, failures)
        elif key[1] == "Deployment" and doc["metadata"]["name"] == "pat-edge-gateway":
            annotations = spec["template"]["metadata"].get("annotations") or {}
            proxy_config = yaml.safe_load(annotations.get("proxy.istio.io/config") or "") or {}
            runtime = (proxy_config.get("runtimeValues") or {}) if isinstance(proxy_config, dict) else {}
            response_limit(where + " proxy.istio.io/config runtimeValues", runtime.get(RESPONSE_LIMIT_KEY), failures)
            proxies = [c for c in spec["template"]["spec"]["containers"] if c["name"] == "istio-proxy"]
            if len(proxies) != 1:
                failures.add(where, "the gateway needs its istio-proxy container")
            else:
                env_from_secret(where, proxies[0].get("env"), failures)
        elif key[1] == "Deployment" and doc["metadata"]["name"] == "pat-origin":
            container = spec["template"]["spec"]["containers"][0]
            args = container.get("args", [])
            if "--module" not in args or "--listen" not in args:
                failures.add(where, "the origin must serve the module: serve --listen … --module PATH")
        elif key[1] == "EnvoyPatchPolicy":
            clusters = [p for p in spec.get("jsonPatches", [])
                        if p.get("type") == "type.googleapis.com/envoy.config.cluster.v3.Cluster"]
            for patch in clusters:
                value = (patch.get("operation") or {}).get("value") or {}
                address = json.dumps(value.get("load_assignment", {}))
                if service is not None:
                    svc = service["metadata"]
                    host = f"{svc['name']}.{svc['namespace']}.svc.cluster.local"
                    if host not in address or '"port_value": 10002' not in address:
                        failures.add(where, f"cluster {value.get('name')} must reach {host}:10002")
        if key[1] in ("EnvoyExtensionPolicy", "EnvoyPatchPolicy", "EnvoyProxy", "WasmPlugin") \
                and namespace == "":
            failures.add(where, "a namespace is needed")
    eep_clusters = {
        ((p.get("operation") or {}).get("value") or {}).get("name")
        for _, d in docs if d.get("kind") == "EnvoyPatchPolicy"
        for p in (d.get("spec") or {}).get("jsonPatches", [])
    }
    for plugin in plugins:
        if plugin["kind"] == "EnvoyExtensionPolicy":
            for section in ("origin", "usage"):
                cluster = ((plugin["config"] or {}).get(section) or {}).get("cluster")
                if cluster not in eep_clusters:
                    failures.add(plugin["file"], f"config.{section}.cluster {cluster!r}: no EnvoyPatchPolicy adds it")
    if print_configs:
        for plugin in plugins:
            print(json.dumps(plugin, sort_keys=True))
    for message in failures.messages:
        print(message, file=sys.stderr)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))
    print(f"{len(docs)} manifests ({summary}); {rules_checked} CEL rules checked; "
          f"{len(failures.messages)} problems", file=sys.stderr)
    return 1 if failures.messages else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
