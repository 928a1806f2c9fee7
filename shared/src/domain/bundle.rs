//! Template bundles: a tar.gz of `schema/` and the infrastructure folders, unpacked with every
//! path, type and size checked, then checked against the layout its kind of template needs.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path};

use serde::Deserialize;

use super::schema::{InputRole, SCHEMA_FILE, TemplateSchema};

/// A bundle may be at most 5 MB, compressed.
pub const MAX_BUNDLE_BYTES: u64 = 5 * 1024 * 1024;

/// Where paved's bucket keeps rendered templates (CloudFormation's large ones, and every
/// deployment's), apart from bundles.
pub const RENDERED_PREFIX: &str = "rendered/";
const MAX_UNPACKED_BYTES: u64 = 50 * 1024 * 1024;
const MAX_ENTRIES: usize = 1_000;
const MAX_SCHEMA_OR_MANIFEST_BYTES: u64 = 50 * 1024;
const MAX_OTHER_FILE_BYTES: u64 = 200 * 1024;
const MAX_TEMPLATE_FILES: usize = 10;

/// The files of an unpacked bundle, by path relative to the bundle root.
#[derive(Debug, Clone, Default)]
pub struct Bundle {
    files: BTreeMap<String, Vec<u8>>,
}

impl Bundle {
    /// Builds a bundle from files already in memory (a folder on disk, a test).
    pub fn from_files(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> Result<Self, String> {
        let mut bundle = Self::default();
        for (path, bytes) in files {
            let path = normalise(Path::new(&path))?;
            check_size(&path, bytes.len() as u64)?;
            bundle.files.insert(path, bytes);
        }
        Ok(bundle.without_single_top_folder())
    }

    /// Unpacks a gzip-compressed tar archive, refusing anything that could escape the bundle.
    pub fn unpack(archive: &[u8]) -> Result<Self, String> {
        if archive.len() as u64 > MAX_BUNDLE_BYTES {
            return Err(format!(
                "the bundle is {} bytes; it may be at most {MAX_BUNDLE_BYTES} bytes",
                archive.len()
            ));
        }
        if !archive.starts_with(&[0x1f, 0x8b]) {
            return Err("the bundle is not a gzip-compressed tar archive (.tar.gz)".into());
        }
        let gunzip = flate2::read::GzDecoder::new(archive).take(MAX_UNPACKED_BYTES + 1);
        let mut tar = tar::Archive::new(gunzip);
        let entries = tar
            .entries()
            .map_err(|e| format!("the bundle is not a tar archive: {e}"))?;
        let mut bundle = Self::default();
        let mut unpacked = 0u64;
        for (index, entry) in entries.enumerate() {
            if index >= MAX_ENTRIES {
                return Err(format!("the bundle holds more than {MAX_ENTRIES} entries"));
            }
            let mut entry = entry.map_err(|e| format!("the bundle is not a valid tar.gz: {e}"))?;
            let raw = entry
                .path()
                .map_err(|e| format!("the bundle has an entry with an unreadable path: {e}"))?
                .into_owned();
            let shown = raw.display().to_string();
            let kind = entry.header().entry_type();
            if kind.is_dir() {
                normalise(&raw)?;
                continue;
            }
            if kind.is_symlink() || kind.is_hard_link() {
                return Err(format!(
                    "bundle entry {shown:?} is a link; a bundle may hold only regular files and folders"
                ));
            }
            if !kind.is_file() && kind != tar::EntryType::Continuous {
                return Err(format!(
                    "bundle entry {shown:?} is not a regular file ({kind:?}); a bundle may hold only regular files and folders"
                ));
            }
            let path = normalise(&raw)?;
            let size = entry.size();
            check_size(&path, size)?;
            unpacked += size;
            if unpacked > MAX_UNPACKED_BYTES {
                return Err(format!(
                    "the bundle unpacks to more than {MAX_UNPACKED_BYTES} bytes"
                ));
            }
            let mut bytes = Vec::with_capacity(size as usize);
            entry
                .read_to_end(&mut bytes)
                .map_err(|e| format!("bundle entry {path:?} could not be read: {e}"))?;
            if is_metadata_noise(&path) {
                continue;
            }
            bundle.files.insert(path, bytes);
        }
        if bundle.files.is_empty() {
            return Err("the bundle holds no files".into());
        }
        Ok(bundle.without_single_top_folder())
    }

    /// Bundles are often packed from their parent folder (`tar czf b.tar.gz my-env/v1`):
    /// when every file sits under one folder that is not a bundle folder, that folder is the root.
    fn without_single_top_folder(mut self) -> Self {
        const BUNDLE_FOLDERS: [&str; 4] = [
            "schema",
            "infrastructure",
            "instance_infrastructure",
            "pipeline_infrastructure",
        ];
        loop {
            let top_of = |path: &String| path.split_once('/').map(|(top, _)| top.to_string());
            let Some(Some(top)) = self.files.keys().next().map(top_of) else {
                return self;
            };
            let one_top = self
                .files
                .keys()
                .all(|p| top_of(p).as_deref() == Some(top.as_str()));
            if !one_top || BUNDLE_FOLDERS.contains(&top.as_str()) {
                return self;
            }
            let cut = top.len() + 1;
            self.files = self
                .files
                .into_iter()
                .map(|(p, b)| (p[cut..].to_string(), b))
                .collect();
        }
    }

    pub fn file(&self, path: &str) -> Option<&[u8]> {
        self.files.get(path).map(Vec::as_slice)
    }

    pub fn text(&self, path: &str) -> Result<Option<&str>, String> {
        self.file(path)
            .map(|bytes| std::str::from_utf8(bytes).map_err(|_| format!("{path}: not UTF-8 text")))
            .transpose()
    }

    pub fn has_folder(&self, folder: &str) -> bool {
        let prefix = format!("{folder}/");
        self.files.keys().any(|p| p.starts_with(&prefix))
    }

    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

fn normalise(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => {
                parts.push(part.to_str().ok_or_else(|| {
                    format!("bundle entry {shown:?} has a path that is not UTF-8")
                })?)
            }
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(format!(
                    "bundle entry {shown:?} climbs out of the bundle with '..'"
                ));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "bundle entry {shown:?} has an absolute path; bundle paths must be relative"
                ));
            }
        }
    }
    Ok(parts.join("/"))
}

fn check_size(path: &str, size: u64) -> Result<(), String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let limit = if matches!(name, "schema.yaml" | "manifest.yaml") {
        MAX_SCHEMA_OR_MANIFEST_BYTES
    } else {
        MAX_OTHER_FILE_BYTES
    };
    if size > limit {
        return Err(format!(
            "{path}: the file is {size} bytes; it may be at most {limit} bytes"
        ));
    }
    Ok(())
}

/// Files that archivers add on their own (macOS resource forks, Finder state).
fn is_metadata_noise(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.starts_with("._") || name == ".DS_Store"
}

/// What a template's bundle must contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BundleLayout {
    /// An environment template that paved provisions: schema and `infrastructure/`.
    Environment,
    /// A customer-managed environment template: a schema only.
    CustomerManagedEnvironment,
    /// A service template; `pipeline` says whether paved provisions its pipeline.
    Service { pipeline: bool },
}

impl BundleLayout {
    /// Parses a schema with the input types this layout requires (and those it allows).
    pub fn parse_schema(self, text: &str) -> Result<TemplateSchema, String> {
        match self {
            Self::Environment | Self::CustomerManagedEnvironment => {
                TemplateSchema::parse(text, &[InputRole::Environment], &[])
            }
            Self::Service { .. } => {
                TemplateSchema::parse(text, &[InputRole::Service], &[InputRole::Pipeline])
            }
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Manifest {
    infrastructure: ManifestInfrastructure,
}

#[derive(Debug, Clone, Deserialize)]
struct ManifestInfrastructure {
    templates: Vec<ManifestTemplate>,
}

#[derive(Debug, Clone, Deserialize)]
struct ManifestTemplate {
    file: String,
    rendering_engine: String,
    template_language: Option<String>,
}

/// One infrastructure folder of a checked bundle and the template files its manifest names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfrastructurePart {
    pub folder: String,
    pub files: Vec<String>,
}

/// A bundle whose layout, manifests and schema were all checked.
#[derive(Debug, Clone)]
pub struct CheckedBundle {
    pub schema_text: String,
    pub schema: TemplateSchema,
    pub parts: Vec<InfrastructurePart>,
}

impl CheckedBundle {
    pub fn has_pipeline(&self) -> bool {
        self.parts
            .iter()
            .any(|p| p.folder == "pipeline_infrastructure")
    }
}

/// Checks a bundle for a template of the given layout.
pub fn check(bundle: &Bundle, layout: BundleLayout) -> Result<CheckedBundle, String> {
    let schema_text = bundle
        .text(SCHEMA_FILE)?
        .ok_or_else(|| {
            let found: Vec<&str> = bundle.paths().take(10).collect();
            format!(
                "{SCHEMA_FILE} is missing from the bundle (found: {})",
                found.join(", ")
            )
        })?
        .to_string();
    let folders: Vec<(&str, bool)> = match layout {
        BundleLayout::Environment => vec![("infrastructure", true)],
        BundleLayout::CustomerManagedEnvironment => vec![],
        BundleLayout::Service { pipeline } => {
            vec![
                ("instance_infrastructure", true),
                ("pipeline_infrastructure", pipeline),
            ]
        }
    };
    let schema = layout.parse_schema(&schema_text)?;
    let mut parts = Vec::new();
    for (folder, required) in folders {
        if !bundle.has_folder(folder) {
            if required {
                return Err(format!("{folder}/ is missing from the bundle"));
            }
            continue;
        }
        parts.push(check_part(bundle, folder)?);
    }
    Ok(CheckedBundle {
        schema_text,
        schema,
        parts,
    })
}

fn check_part(bundle: &Bundle, folder: &str) -> Result<InfrastructurePart, String> {
    let manifest_path = format!("{folder}/manifest.yaml");
    let text = bundle
        .text(&manifest_path)?
        .ok_or_else(|| format!("{manifest_path} is missing from the bundle"))?;
    let mut files = Vec::new();
    for file in manifest_files(text, &manifest_path)? {
        let path = format!("{folder}/{file}");
        if file.contains("..") || file.starts_with('/') {
            return Err(format!(
                "{manifest_path}: file {file:?} is outside {folder}/"
            ));
        }
        bundle
            .text(&path)?
            .ok_or_else(|| format!("{manifest_path}: names {path}, which is not in the bundle"))?;
        files.push(path);
    }
    Ok(InfrastructurePart {
        folder: folder.to_string(),
        files,
    })
}

/// The template files a manifest lists, checked to be Jinja-rendered CloudFormation; errors
/// start with `manifest_path`.
pub fn manifest_files(text: &str, manifest_path: &str) -> Result<Vec<String>, String> {
    let manifest: Manifest = super::yaml::from_str(text)
        .map_err(|e| format!("{manifest_path}: not a valid manifest: {e}"))?;
    let templates = manifest.infrastructure.templates;
    if templates.is_empty() {
        return Err(format!(
            "{manifest_path}: infrastructure.templates lists no template file"
        ));
    }
    if templates.len() > MAX_TEMPLATE_FILES {
        return Err(format!(
            "{manifest_path}: lists {} template files; at most {MAX_TEMPLATE_FILES} are allowed",
            templates.len()
        ));
    }
    let mut files = Vec::new();
    for template in templates {
        if template.rendering_engine != "jinja" {
            return Err(format!(
                "{manifest_path}: rendering_engine {:?} is not supported; paved deploys Jinja-rendered CloudFormation (rendering_engine: jinja)",
                template.rendering_engine
            ));
        }
        if let Some(language) = template.template_language.as_deref()
            && language != "cloudformation"
        {
            return Err(format!(
                "{manifest_path}: template_language {language:?} is not supported; paved deploys CloudFormation"
            ));
        }
        files.push(template.file);
    }
    Ok(files)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const ENV_SCHEMA: &str = "schema:\n  format:\n    openapi: \"3.0.0\"\n  environment_input_type: In\n  types:\n    In:\n      type: object\n      properties:\n        cidr:\n          type: string\n          default: 10.0.0.0/16\n";
    pub const MANIFEST: &str = "infrastructure:\n  templates:\n    - file: cloudformation.yaml\n      rendering_engine: jinja\n      template_language: cloudformation\n";

    /// Packs `(path, bytes)` entries into a tar.gz, with full control over entry types.
    pub fn pack(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
            Vec::new(),
            flate2::Compression::fast(),
        ));
        for (path, bytes, kind) in entries {
            let mut header = tar::Header::new_gnu();
            // Written raw: `set_path` refuses '..' and absolute paths, which these tests need.
            let name = path.as_bytes();
            header.as_old_mut().name[..name.len()].copy_from_slice(name);
            header.set_entry_type(*kind);
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            if kind.is_symlink() {
                header.set_link_name("/etc/passwd").unwrap();
            }
            header.set_cksum();
            builder.append(&header, *bytes).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    pub fn env_bundle() -> Vec<u8> {
        let file = tar::EntryType::Regular;
        pack(&[
            ("schema/schema.yaml", ENV_SCHEMA.as_bytes(), file),
            ("infrastructure/manifest.yaml", MANIFEST.as_bytes(), file),
            (
                "infrastructure/cloudformation.yaml",
                b"Resources: {}\n",
                file,
            ),
        ])
    }

    #[test]
    fn an_environment_bundle_unpacks_and_checks() {
        let bundle = Bundle::unpack(&env_bundle()).unwrap();
        let checked = check(&bundle, BundleLayout::Environment).unwrap();
        assert_eq!(
            checked.parts[0].files,
            ["infrastructure/cloudformation.yaml"]
        );
        assert!(!checked.has_pipeline());
    }

    #[test]
    fn a_single_top_folder_is_taken_as_the_root() {
        let file = tar::EntryType::Regular;
        let archive = pack(&[
            (
                "./my-env/v1/schema/schema.yaml",
                ENV_SCHEMA.as_bytes(),
                file,
            ),
            (
                "./my-env/v1/infrastructure/manifest.yaml",
                MANIFEST.as_bytes(),
                file,
            ),
            ("./my-env/v1/infrastructure/cloudformation.yaml", b"x", file),
        ]);
        let bundle = Bundle::unpack(&archive).unwrap();
        assert!(check(&bundle, BundleLayout::Environment).is_ok());
    }

    #[test]
    fn escaping_paths_and_links_are_refused() {
        let file = tar::EntryType::Regular;
        let cases: [(&str, tar::EntryType, &str); 4] = [
            ("../evil.yaml", file, "climbs out"),
            ("/etc/evil.yaml", file, "absolute path"),
            ("schema/link", tar::EntryType::Symlink, "is a link"),
            ("schema/fifo", tar::EntryType::Fifo, "not a regular file"),
        ];
        for (path, kind, expected) in cases {
            let archive = pack(&[
                ("schema/schema.yaml", ENV_SCHEMA.as_bytes(), file),
                (path, b"x", kind),
            ]);
            let err = Bundle::unpack(&archive).unwrap_err();
            assert!(err.contains(expected), "{path}: {err}");
        }
    }

    #[test]
    fn non_gzip_and_oversized_input_is_refused() {
        assert!(
            Bundle::unpack(b"PK\x03\x04 zip")
                .unwrap_err()
                .contains("not a gzip")
        );
        let big = vec![0x1f; (MAX_BUNDLE_BYTES + 1) as usize];
        assert!(Bundle::unpack(&big).unwrap_err().contains("at most"));
        let file = tar::EntryType::Regular;
        let huge = vec![b'#'; 200 * 1024 + 1];
        let archive = pack(&[("infrastructure/cloudformation.yaml", &huge, file)]);
        let err = Bundle::unpack(&archive).unwrap_err();
        assert!(
            err.starts_with("infrastructure/cloudformation.yaml: the file is 204801 bytes"),
            "{err}"
        );
    }

    #[test]
    fn layout_errors_name_the_file() {
        let file = tar::EntryType::Regular;
        let only_schema = Bundle::unpack(&pack(&[(
            "schema/schema.yaml",
            ENV_SCHEMA.as_bytes(),
            file,
        )]))
        .unwrap();
        assert_eq!(
            check(&only_schema, BundleLayout::Environment).unwrap_err(),
            "infrastructure/ is missing from the bundle"
        );
        assert!(check(&only_schema, BundleLayout::CustomerManagedEnvironment).is_ok());

        let hcl = MANIFEST.replace("jinja", "hcl");
        let bundle = Bundle::unpack(&pack(&[
            ("schema/schema.yaml", ENV_SCHEMA.as_bytes(), file),
            ("infrastructure/manifest.yaml", hcl.as_bytes(), file),
        ]))
        .unwrap();
        let err = check(&bundle, BundleLayout::Environment).unwrap_err();
        assert!(
            err.starts_with("infrastructure/manifest.yaml: rendering_engine \"hcl\""),
            "{err}"
        );

        let bundle = Bundle::unpack(&pack(&[
            ("schema/schema.yaml", ENV_SCHEMA.as_bytes(), file),
            ("infrastructure/manifest.yaml", MANIFEST.as_bytes(), file),
        ]))
        .unwrap();
        let err = check(&bundle, BundleLayout::Environment).unwrap_err();
        assert!(
            err.contains("names infrastructure/cloudformation.yaml, which is not in the bundle"),
            "{err}"
        );

        let bundle =
            Bundle::unpack(&pack(&[("schema/schema.yaml", b"schema: [unclosed", file)])).unwrap();
        let err = check(&bundle, BundleLayout::CustomerManagedEnvironment).unwrap_err();
        assert!(
            err.starts_with("schema/schema.yaml: not a valid schema"),
            "{err}"
        );
    }
}
