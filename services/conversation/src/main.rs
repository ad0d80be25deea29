//! `helpdesk-conversation`: the conversation service on its own.

fn main() -> anyhow::Result<()> {
    Ok(helpdesk_kit::main::<helpdesk_conversation::Conversation>()?)
}
