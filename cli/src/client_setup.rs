//! `paved client setup`: makes the stock AWS CLI (v1 and v2) and boto3 sign Proton calls the
//! way API Gateway verifies them.
//!
//! In AWS, paved's API is an API Gateway REST API with IAM authorization, which accepts SigV4
//! signatures for the service `execute-api` only; the stock clients sign Proton calls for
//! `proton`. botocore (under boto3, the CLI v1 and, vendored, the CLI v2) reads service models
//! from the user's model folder (`~/.aws/models`, the folder `aws configure add-model` writes)
//! before its own, so a copy of its own Proton model whose `metadata.signingName` is
//! `execute-api` makes every one of them sign that way. The copy is made from the model the
//! user's own botocore ships: nothing of the model is kept in paved.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{Args, Subcommand};
use serde_json::Value;

/// The Proton API version every botocore ships.
const API_VERSION: &str = "2020-07-20";
/// The member paved adds to the model's metadata, naming where the copy came from: a model
/// without it is not paved's, and is never overwritten or removed without `--force`.
const MARKER: &str = "pavedClientSetup";

#[derive(Subcommand)]
pub enum ClientCommand {
    /// Write the Proton model that signs for `execute-api` into the user's model folder.
    Setup(SetupArgs),
    /// Remove the model `setup` wrote: the clients sign for `proton` again.
    Remove(RemoveArgs),
}

#[derive(Args)]
pub struct SetupArgs {
    /// The model folder botocore reads (default: ~/.aws/models).
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// The Proton model to start from (a `service-2.json` or `service-2.json.gz`); by default
    /// the one of the botocore found beside `python3` or the `aws` command.
    #[arg(long)]
    from: Option<PathBuf>,
    /// paved's API endpoint (the stack's `ProtonApiEndpoint` output), for the hints printed.
    #[arg(long)]
    endpoint: Option<String>,
    /// Overwrite a Proton model in the folder that paved did not write.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
pub struct RemoveArgs {
    #[arg(long)]
    models_dir: Option<PathBuf>,
    /// Remove the Proton model in the folder even if paved did not write it.
    #[arg(long)]
    force: bool,
}

type Failure = Box<dyn std::error::Error>;

pub fn run(command: ClientCommand) -> Result<bool, Failure> {
    match command {
        ClientCommand::Setup(args) => setup(args),
        ClientCommand::Remove(args) => remove(args),
    }
}

fn models_dir(given: Option<PathBuf>) -> Result<PathBuf, Failure> {
    if let Some(dir) = given {
        return Ok(dir);
    }
    let home = std::env::var_os("HOME").ok_or("HOME is not set: pass --models-dir")?;
    Ok(PathBuf::from(home).join(".aws").join("models"))
}

fn target(models: &Path) -> PathBuf {
    models
        .join("proton")
        .join(API_VERSION)
        .join("service-2.json")
}

fn setup(args: SetupArgs) -> Result<bool, Failure> {
    let models = models_dir(args.models_dir)?;
    let target = target(&models);
    if target.exists() && !args.force && !written_by_paved(&target) {
        return Err(format!(
            "{} holds a Proton model paved did not write; move it away or pass --force",
            target.display()
        )
        .into());
    }
    let source = match args.from {
        Some(path) => path,
        None => find_model().ok_or(
            "no botocore Proton model found beside python3 or the aws command; install boto3 or the AWS CLI, or pass --from PATH/service-2.json",
        )?,
    };
    let model = read_model(&source)?;
    let signing = signing_for_execute_api(model, &source)?;
    let parent = target.parent().expect("a path with folders");
    std::fs::create_dir_all(parent)?;
    let partial = parent.join(".service-2.json.paved");
    std::fs::write(&partial, serde_json::to_vec(&signing)?)?;
    std::fs::rename(&partial, &target)?;
    println!(
        "wrote {} (the Proton model of {}, signing for execute-api)",
        target.display(),
        source.display()
    );
    println!(
        "boto3, the AWS CLI v1 and the AWS CLI v2 of this user now sign Proton calls for execute-api,"
    );
    println!("as paved's API in AWS requires (paved dev accepts both).");
    let endpoint = args
        .endpoint
        .unwrap_or_else(|| "https://<api-id>.execute-api.<region>.amazonaws.com/v1".into());
    println!("Point them at paved with either of:");
    println!("  export AWS_ENDPOINT_URL_PROTON={endpoint}");
    println!("  aws proton ... --endpoint-url {endpoint}");
    println!("Undo with `paved client remove`.");
    Ok(true)
}

fn remove(args: RemoveArgs) -> Result<bool, Failure> {
    let target = target(&models_dir(args.models_dir)?);
    if !target.exists() {
        println!("{} does not exist: nothing to remove", target.display());
        return Ok(true);
    }
    if !args.force && !written_by_paved(&target) {
        return Err(format!(
            "{} is a Proton model paved did not write; pass --force to remove it anyway",
            target.display()
        )
        .into());
    }
    std::fs::remove_file(&target)?;
    println!("removed {}", target.display());
    Ok(true)
}

fn written_by_paved(path: &Path) -> bool {
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|model| model["metadata"].get(MARKER).is_some())
}

/// The model with `execute-api` as its signing name, and where it came from.
fn signing_for_execute_api(mut model: Value, source: &Path) -> Result<Value, Failure> {
    let metadata = model
        .get_mut("metadata")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("{} is not a botocore service model", source.display()))?;
    if metadata.get("targetPrefix").and_then(Value::as_str) != Some("AwsProton20200720")
        || metadata.get("apiVersion").and_then(Value::as_str) != Some(API_VERSION)
    {
        return Err(format!(
            "{} is not the Proton model (targetPrefix AwsProton20200720, apiVersion {API_VERSION})",
            source.display()
        )
        .into());
    }
    metadata.insert("signingName".into(), "execute-api".into());
    metadata.insert(MARKER.into(), source.display().to_string().into());
    Ok(model)
}

fn read_model(path: &Path) -> Result<Value, Failure> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let text = if path.extension().is_some_and(|e| e == "gz") {
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(bytes.as_slice())
            .read_to_end(&mut text)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        text
    } else {
        bytes
    };
    serde_json::from_slice(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()).into())
}

/// The Proton model of the first botocore found: boto3's (beside `python3`), then the AWS
/// CLI's (v1: the botocore of its Python; v2: the one it vendors as `awscli.botocore`, in its
/// Python or, for the official installer, beside its executable).
fn find_model() -> Option<PathBuf> {
    data_dirs()
        .into_iter()
        .flat_map(|data| {
            let folder = data.join("proton").join(API_VERSION);
            [
                folder.join("service-2.json"),
                folder.join("service-2.json.gz"),
            ]
        })
        .find(|path| path.is_file())
}

fn data_dirs() -> Vec<PathBuf> {
    let mut pythons = vec![PathBuf::from("python3")];
    let aws = which("aws");
    if let Some(python) = aws.as_deref().and_then(shebang_python) {
        pythons.push(python);
    }
    let mut dirs: Vec<PathBuf> = pythons.iter().flat_map(|p| botocore_data(p)).collect();
    if let Some(aws) = aws.and_then(|a| std::fs::canonicalize(a).ok()) {
        // The official v2 installer: `.../dist/aws` with `.../dist/awscli/botocore/data`.
        if let Some(dist) = aws.parent() {
            dirs.push(dist.join("awscli").join("botocore").join("data"));
        }
    }
    dirs
}

/// The data folders of the botocore modules a Python can import.
fn botocore_data(python: &Path) -> Vec<PathBuf> {
    let script = "import importlib.util, os\nfor name in ('botocore', 'awscli.botocore'):\n    try:\n        spec = importlib.util.find_spec(name)\n    except Exception:\n        spec = None\n    if spec and spec.origin:\n        print(os.path.join(os.path.dirname(spec.origin), 'data'))\n";
    Command::new(python)
        .args(["-c", script])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(PathBuf::from)
                .collect()
        })
        .unwrap_or_default()
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// The interpreter of a Python script's `#!` line (the AWS CLI v1 and Debian's v2 are scripts;
/// a version manager's shim names no Python and is skipped).
fn shebang_python(script: &Path) -> Option<PathBuf> {
    let mut head = [0u8; 256];
    let read = std::fs::File::open(script).ok()?.read(&mut head).ok()?;
    let first = std::str::from_utf8(&head[..read]).ok()?.lines().next()?;
    let command = first.strip_prefix("#!")?.trim();
    let mut words = command.split_whitespace();
    let program = words.next()?;
    let python = if program.ends_with("/env") {
        words.next()?
    } else {
        program
    };
    python.contains("python").then(|| PathBuf::from(python))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(prefix: &str) -> Value {
        serde_json::json!({
            "metadata": {"apiVersion": API_VERSION, "targetPrefix": prefix, "signingName": "proton"},
            "operations": {"ListEnvironments": {}},
        })
    }

    #[test]
    fn only_the_signing_name_changes_and_the_copy_names_its_source() {
        let signed =
            signing_for_execute_api(model("AwsProton20200720"), Path::new("/x/service-2.json"))
                .unwrap();
        assert_eq!(signed["metadata"]["signingName"], "execute-api");
        assert_eq!(signed["metadata"][MARKER], "/x/service-2.json");
        assert_eq!(signed["operations"], model("")["operations"]);
    }

    #[test]
    fn a_model_of_another_service_is_refused() {
        let error = signing_for_execute_api(model("AmazonS3"), Path::new("s3.json")).unwrap_err();
        assert!(
            error.to_string().contains("not the Proton model"),
            "{error}"
        );
    }

    #[test]
    fn gzipped_models_are_read_and_a_shebang_names_its_python() {
        let dir = std::env::temp_dir().join(format!("paved-client-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let gz = dir.join("service-2.json.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(
            &mut encoder,
            model("AwsProton20200720").to_string().as_bytes(),
        )
        .unwrap();
        std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
        assert_eq!(read_model(&gz).unwrap(), model("AwsProton20200720"));
        let script = dir.join("aws");
        std::fs::write(&script, "#!/usr/bin/python3\nimport awscli\n").unwrap();
        assert_eq!(
            shebang_python(&script),
            Some(PathBuf::from("/usr/bin/python3"))
        );
        std::fs::write(&script, "#!/usr/bin/env bash\nexec pyenv aws\n").unwrap();
        assert_eq!(shebang_python(&script), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
