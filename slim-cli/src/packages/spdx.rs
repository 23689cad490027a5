//! `sbom.spdx.json`: an SPDX 2.3 document describing the slim image (by its digest) and
//! containing the packages that remain in it, each with its version, architecture and package
//! URL (`pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12`).

use serde_json::{json, Value};

use super::{Db, Distro, Package, Report};

/// File name in the output dir.
pub const FILE: &str = "sbom.spdx.json";

/// The image being described.
pub struct Described<'a> {
    /// Its tag.
    pub name: &'a str,
    /// `sha256:...` image id.
    pub id: &'a str,
    pub created: String,
}

/// The SPDX document for `report`'s kept packages.
pub fn document(image: &Described, report: &Report) -> Value {
    let hex = image.id.strip_prefix("sha256:").unwrap_or(image.id);
    let (repo, _) = crate::image::reference::split_reference(image.name);
    let image_name = repo.rsplit('/').next().unwrap_or(repo);
    let mut packages = vec![json!({
        "name": image.name,
        "SPDXID": "SPDXRef-Image",
        "versionInfo": image.id,
        "downloadLocation": "NOASSERTION",
        "primaryPackagePurpose": "CONTAINER",
        "filesAnalyzed": false,
        "checksums": [{"algorithm": "SHA256", "checksumValue": hex}],
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "externalRefs": [purl_ref(format!("pkg:oci/{}@sha256%3A{hex}", encode(image_name)))],
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Image",
    })];
    for (index, package) in report.kept.iter().enumerate() {
        let id = format!("SPDXRef-Package-{}-{index}", spdx_id_part(&package.name));
        let mut entry = json!({
            "name": package.name,
            "SPDXID": id,
            "versionInfo": package.version,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
            "externalRefs": [purl_ref(purl(report.database, report.distro.as_ref(), package))],
        });
        if let Some(supplier) = &package.supplier {
            entry["supplier"] = json!(format!("Person: {}", supplier.replace('\n', " ")));
        }
        if let Some(source) = &package.source {
            entry["sourceInfo"] = json!(format!("built from the source package {source}"));
        }
        packages.push(entry);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": image.name,
        "documentNamespace": format!("https://slim.invalid/spdx/{}/{hex}", encode(image_name)),
        "creationInfo": {
            "created": image.created,
            "creators": [format!("Tool: slim-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    })
}

/// An SPDX external reference holding a package URL.
fn purl_ref(locator: String) -> Value {
    json!({
        "referenceCategory": "PACKAGE-MANAGER",
        "referenceType": "purl",
        "referenceLocator": locator,
    })
}

/// The package URL of a kept package.
pub fn purl(db: Db, distro: Option<&Distro>, package: &Package) -> String {
    let namespace = distro.map(|d| d.id.as_str()).unwrap_or(match db {
        Db::Apk => "alpine",
        _ => "debian",
    });
    let mut qualifiers = Vec::new();
    if !package.arch.is_empty() {
        qualifiers.push(format!("arch={}", encode(&package.arch)));
    }
    if let Some(distro) = distro.filter(|d| !d.version_id.is_empty()) {
        let value = match db {
            Db::Apk => distro.version_id.clone(),
            _ => format!("{}-{}", distro.id, distro.version_id),
        };
        qualifiers.push(format!("distro={}", encode(&value)));
    }
    if let Some(source) = package.source.as_ref().filter(|s| **s != package.name) {
        qualifiers.push(format!("upstream={}", encode(source)));
    }
    let mut purl = format!(
        "pkg:{}/{}/{}@{}",
        db.purl_type(),
        encode(namespace),
        encode(&package.name),
        encode(&package.version)
    );
    if !qualifiers.is_empty() {
        purl.push('?');
        purl.push_str(&qualifiers.join("&"));
    }
    purl
}

/// Percent-encodes what a purl component may not hold as is (`+`, `:`, `~` stays).
fn encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// An SPDX id may hold letters, digits, `.` and `-` only.
fn spdx_id_part(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' => c,
            _ => '-',
        })
        .collect()
}
