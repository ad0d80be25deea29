//! `helpdesk-notification`: the notification service on its own.

fn main() -> anyhow::Result<()> {
    Ok(helpdesk_kit::main::<helpdesk_notification::Notification>()?)
}
