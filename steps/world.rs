//! The per-scenario World: it holds the scenario the run handed over in its `before` hook.

use crate::scenario::Scenario;

#[derive(Debug, Default, cucumber::World)]
pub struct DrWorld {
    pub scenario: Option<Scenario>,
}

impl DrWorld {
    pub fn s(&mut self) -> anyhow::Result<&mut Scenario> {
        self.scenario.as_mut().ok_or_else(|| anyhow::anyhow!("the run did not hand this scenario its session"))
    }
}
