//! `dr-drill env up|down|status`: an environment that outlives the command.

use super::Exit;
use crate::config::EnvConfig;

pub async fn up(cfg: &EnvConfig, dry_run: bool) -> anyhow::Result<Exit> {
    if dry_run {
        print!("{}", crate::env::plan(cfg)?);
        return Ok(Exit::Passed);
    }
    for l in crate::env::up_detached(cfg).await? {
        println!("{l}");
    }
    Ok(Exit::Passed)
}

pub async fn down(cfg: &EnvConfig) -> anyhow::Result<Exit> {
    for l in crate::env::down_detached(cfg).await? {
        println!("{l}");
    }
    Ok(Exit::Passed)
}

pub async fn image(cfg: &EnvConfig, push: bool) -> anyhow::Result<Exit> {
    for l in crate::env::cluster::kind_up::probe_image(cfg, push).await? {
        println!("{l}");
    }
    Ok(Exit::Passed)
}

pub async fn status(cfg: &EnvConfig) -> anyhow::Result<Exit> {
    for l in crate::env::status(cfg).await? {
        println!("{l}");
    }
    Ok(Exit::Passed)
}
