//! The filter's OCI image as `scripts/package` builds it (Debian's buildah, FROM scratch, one
//! `plugin.wasm` layer: the "compat" layout Istio's and Envoy Gateway's fetchers read), checked
//! blob by blob the way those fetchers read it: `index.json` names one manifest by the tag;
//! the manifest, the config and the single layer have the OCI media types and the digests and
//! sizes of their blobs; the layer is a gzipped tar holding exactly `plugin.wasm`, whose bytes
//! are the built filter's; the config's `diff_ids` are the uncompressed tar's digest; the OCI
//! archive holds the same layout; two builds give the same digest; the manifests
//! `scripts/package` fills in pin that digest and the module's hash.
//!
//! Needs buildah and skopeo (`scripts/test` installs them: `ensure_oci_tools`).

use std::path::{Path, PathBuf};
use std::process::Command;

use pat_admin::module::sha256_hex;
use pat_e2e::{module, root};
use serde_json::Value;

const TAG: &str = "e2e-1";

/// Runs `scripts/package --no-build` into `dir/oci`; returns its output's lines as
/// (label, value).
fn package(dir: &Path) -> Vec<(String, String)> {
    let out = Command::new(root().join("scripts/package"))
        .current_dir(root())
        .args([
            "--no-build",
            "--tag",
            TAG,
            "--image",
            "registry.test/pat-edge",
        ])
        .arg("--out")
        .arg(dir.join("oci"))
        .output()
        .expect("scripts/package runs");
    assert!(
        out.status.success(),
        "scripts/package failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn printed<'a>(lines: &'a [(String, String)], label: &str) -> &'a str {
    lines
        .iter()
        .find(|(k, _)| k == label)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("scripts/package printed no `{label}:` line: {lines:?}"))
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("JSON")
}

/// The blob a descriptor names, checked against its digest and size.
fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().expect("a digest");
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).expect("the blob exists");
    assert_eq!(sha256_hex(&bytes), hex, "the blob's content is its digest");
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(bytes.len() as u64),
        "the descriptor's size"
    );
    bytes
}

/// A tar's entries: (type flag, name, content). Plain ustar, as buildah writes it.
fn tar_entries(tar: &[u8]) -> Vec<(u8, String, Vec<u8>)> {
    let field = |block: &[u8], from: usize, to: usize| {
        let raw = &block[from..to];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
        String::from_utf8(raw[..end].to_vec()).expect("a text field")
    };
    let mut entries = Vec::new();
    let mut at = 0;
    while at + 512 <= tar.len() {
        let header = &tar[at..at + 512];
        if header.iter().all(|&b| b == 0) {
            break;
        }
        let stored: u32 = header[148..156]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .fold(0, |n, b| n * 8 + u32::from(b - b'0'));
        let sum: u32 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| {
                if (148..156).contains(&i) {
                    32
                } else {
                    u32::from(b)
                }
            })
            .sum();
        assert_eq!(stored, sum, "the header's checksum");
        let size = usize::from_str_radix(field(header, 124, 136).trim(), 8).expect("a size");
        let prefix = field(header, 345, 500);
        let name = field(header, 0, 100);
        let name = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let content = tar[at + 512..at + 512 + size].to_vec();
        entries.push((header[156], name, content));
        at += 512 + size.div_ceil(512) * 512;
    }
    entries
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gzip runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("gzip");
    writer.join().expect("writer").expect("write to gzip");
    assert!(out.status.success(), "the layer is gzip");
    out.stdout
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a directory") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

#[test]
fn the_image_is_one_plugin_wasm_layer_from_scratch_holding_the_built_filter() {
    let wasm = std::fs::read(module()).expect("the built filter");
    let dir = tempfile::tempdir().expect("dir");
    let printed_lines = package(dir.path());
    let layout = dir.path().join("oci/pat-edge");

    // The layout: its marker, and an index naming one manifest by the tag.
    assert_eq!(
        json(&layout.join("oci-layout")),
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );
    let index = json(&layout.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "{index}");
    let descriptor = &manifests[0];
    assert_eq!(
        descriptor["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        descriptor["annotations"]["org.opencontainers.image.ref.name"],
        TAG
    );
    let digest = descriptor["digest"].as_str().expect("digest").to_string();
    assert_eq!(printed(&printed_lines, "image digest"), digest);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("oci/pat-edge.digest")).expect("digest file"),
        format!("{digest}\n")
    );

    // The manifest: an OCI image manifest, an OCI config, exactly one gzipped tar layer.
    let manifest: Value = serde_json::from_slice(&blob(&layout, descriptor)).expect("JSON");
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "FROM scratch and one COPY: {manifest}");
    assert_eq!(
        layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
        "the compat layout's layer (not application/vnd.module.wasm.content.layer.v1+wasm)"
    );
    let config: Value = serde_json::from_slice(&blob(&layout, &manifest["config"])).expect("JSON");
    let compressed = blob(&layout, &layers[0]);

    // The layer: a tar holding exactly plugin.wasm, a regular file, the built filter's bytes.
    let tar = gunzip(&compressed);
    let entries = tar_entries(&tar);
    assert_eq!(
        entries
            .iter()
            .map(|(kind, name, _)| (char::from(*kind), name.as_str()))
            .collect::<Vec<_>>(),
        [('0', "plugin.wasm")],
        "exactly plugin.wasm"
    );
    assert!(entries[0].2 == wasm, "plugin.wasm is the built filter");

    // The config: the layer's uncompressed digest, one history entry, the module's hash.
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([format!("sha256:{}", sha256_hex(&tar))])
    );
    assert_eq!(config["history"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        (&config["os"], &config["architecture"]),
        (&"linux".into(), &"amd64".into())
    );
    let module_hash = sha256_hex(&wasm);
    assert_eq!(
        config["config"]["Labels"]["io.pat-edge.module.sha256"],
        module_hash.as_str()
    );
    assert!(
        config["config"]["Labels"]
            .get("io.buildah.version")
            .is_none(),
        "no builder label: the digest depends on the module"
    );
    assert!(printed(&printed_lines, "module sha256").starts_with(&module_hash));

    // Nothing else in the layout.
    let mut expected: Vec<PathBuf> = [
        "index.json".to_string(),
        "oci-layout".to_string(),
        format!("blobs/{}", digest.replace(':', "/")),
        format!(
            "blobs/{}",
            manifest["config"]["digest"]
                .as_str()
                .expect("d")
                .replace(':', "/")
        ),
        format!(
            "blobs/{}",
            layers[0]["digest"].as_str().expect("d").replace(':', "/")
        ),
    ]
    .iter()
    .map(|p| layout.join(p))
    .collect();
    expected.sort();
    assert_eq!(files_under(&layout), expected);

    // The OCI archive holds the same layout, byte for byte.
    let unpacked = dir.path().join("unpacked");
    std::fs::create_dir(&unpacked).expect("dir");
    let untar = Command::new("tar")
        .arg("-xf")
        .arg(dir.path().join("oci/pat-edge.tar"))
        .arg("-C")
        .arg(&unpacked)
        .status()
        .expect("tar runs");
    assert!(untar.success());
    for file in &expected {
        let relative = file.strip_prefix(&layout).expect("inside");
        assert_eq!(
            std::fs::read(unpacked.join(relative)).expect("in the archive"),
            std::fs::read(file).expect("in the layout"),
            "{}",
            relative.display()
        );
    }

    // Reproducible: the same module gives the same digest.
    let again = tempfile::tempdir().expect("dir");
    assert_eq!(printed(&package(again.path()), "image digest"), digest);

    // The filled-in manifests pin this image and this module.
    let rendered = dir.path().join("deploy");
    let istio = std::fs::read_to_string(rendered.join("istio/wasmplugin.yaml")).expect("istio");
    let hex = digest.strip_prefix("sha256:").expect("hex");
    assert!(istio.contains(&format!("sha256: \"{hex}\"")), "{istio}");
    assert!(
        istio.contains(&format!("oci://registry.test/pat-edge@{digest}")),
        "{istio}"
    );
    let gateway = std::fs::read_to_string(rendered.join("envoy-gateway/envoyextensionpolicy.yaml"))
        .expect("envoy gateway");
    assert!(gateway.contains(&format!("sha256: \"{hex}\"")), "{gateway}");
    let remote = std::fs::read_to_string(rendered.join("envoy-remote.yaml")).expect("remote");
    assert!(remote.contains(&format!("sha256: \"{module_hash}\"")));
    for text in [&istio, &gateway, &remote] {
        assert!(!text.contains("${"), "every placeholder filled in");
    }
    // And they pass the manifests' checks as they are (deploy/check.py, no sample values).
    let checked = Command::new(pat_e2e::python())
        .arg(root().join("deploy/check.py"))
        .arg(&rendered)
        .output()
        .expect("deploy/check.py runs");
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
}
