//! `pve-operator crd`: print (or write) the CRDs generated from the Rust types.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;

/// Options of `pve-operator crd`.
#[derive(Debug, Args)]
pub struct CrdArgs {
    /// Write one file per CRD into this directory instead of printing all to stdout.
    #[arg(long)]
    pub output_dir: Option<PathBuf>,
}

/// Prints every CRD as a multi-document YAML stream, or writes them into `--output-dir`.
pub fn run(args: CrdArgs) -> anyhow::Result<()> {
    for crd in pve_operator_api::crds() {
        let yaml = pve_operator_api::crd_yaml(&crd)?;
        match &args.output_dir {
            Some(dir) => {
                let path = dir.join(pve_operator_api::crd_file_name(&crd));
                std::fs::write(&path, yaml)
                    .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("wrote {}", path.display());
            }
            None => print!("---\n{yaml}"),
        }
    }
    Ok(())
}
