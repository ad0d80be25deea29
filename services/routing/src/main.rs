//! `helpdesk-routing`: the routing service on its own.

fn main() -> anyhow::Result<()> {
    Ok(helpdesk_kit::main::<helpdesk_routing::Routing>()?)
}
