//! `helpdesk-ticketing`: the ticketing service on its own.

fn main() -> anyhow::Result<()> {
    Ok(helpdesk_kit::main::<helpdesk_ticketing::Ticketing>()?)
}
