//! `dr-drill env up|down|status`: an environment that outlives the command.

use super::EXIT_OK;
use crate::config::EnvConfig;

pub async fn up(cfg: &EnvConfig, dry_run: bool) -> anyhow::Result<i32> {
    if dry_run {
        print!("{}", crate::env::plan(cfg)?);
        return Ok(EXIT_OK);
    }
    for l in crate::env::up_detached(cfg).await? {
        println!("{l}");
    }
    Ok(EXIT_OK)
}

pub async fn down(cfg: &EnvConfig) -> anyhow::Result<i32> {
    for l in crate::env::down_detached(cfg).await? {
        println!("{l}");
    }
    Ok(EXIT_OK)
}

pub async fn image(cfg: &EnvConfig, push: bool) -> anyhow::Result<i32> {
    for l in crate::env::cluster::kind_up::probe_image(cfg, push).await? {
        println!("{l}");
    }
    Ok(EXIT_OK)
}

pub async fn status(cfg: &EnvConfig) -> anyhow::Result<i32> {
    for l in crate::env::status(cfg).await? {
        println!("{l}");
    }
    Ok(EXIT_OK)
}
