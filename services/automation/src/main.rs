//! `helpdesk-automation`: the automation service on its own.

fn main() -> anyhow::Result<()> {
    Ok(helpdesk_kit::main::<helpdesk_automation::Automation>()?)
}
