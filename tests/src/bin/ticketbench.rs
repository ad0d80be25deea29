//! `ticketbench`: tickets made from chats per second, tickets created per second,
//! and `ListTickets` with full-text search over a large account.
//!
//! 1. `--chats` visitors each start a chat and write `--chat-messages` messages; the
//!    chats are turned into tickets (`CreateTicketFromConversation`, `--concurrency`
//!    at once): tickets/s and call latency.
//! 2. `CreateTicket` fills the account up to `--tickets` tickets (subjects and
//!    descriptions drawn from a vocabulary of `--vocabulary` words): tickets/s.
//! 3. `--searches` `ListTickets` calls one after another, each searching one word
//!    or two (a word matches about tickets × 24 / vocabulary of them), a page of
//!    25: latency.
//!
//! Against a running platform with `--conversation` and `--ticketing` (and
//! HELPDESK_JWT_SECRET), in a fresh account. Without them it runs the services
//! in-process on NATS and PostgreSQL servers of its own (fsync off).

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use helpdesk_kit::auth::Role;
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::{Contact, SendMessageRequest, StartConversationRequest};
use helpdesk_proto::ticketing::v1::ticketing_service_client::TicketingServiceClient;
use helpdesk_proto::ticketing::v1::{
    CreateTicketFromConversationRequest, CreateTicketRequest, ListTicketsRequest, Ticket,
};
use helpdesk_tests::load::{self, Tokens, percentile, summary};
use helpdesk_tests::platform::{Platform, authed};
use tonic::Request;

#[derive(Parser)]
#[command(about = "Ticketing benchmark")]
struct Args {
    /// Chats turned into tickets.
    #[arg(long, default_value_t = 500)]
    chats: usize,
    /// Messages in each chat.
    #[arg(long, default_value_t = 10)]
    chat_messages: usize,
    /// Tickets in the account before searching.
    #[arg(long, default_value_t = 100_000)]
    tickets: usize,
    /// Words tickets are written with.
    #[arg(long, default_value_t = 5_000)]
    vocabulary: usize,
    /// Concurrent calls while creating.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Searches measured.
    #[arg(long, default_value_t = 1_000)]
    searches: usize,
    /// Conversation service of a running platform (then --ticketing and
    /// HELPDESK_JWT_SECRET are required).
    #[arg(long, requires = "ticketing")]
    conversation: Option<String>,
    /// Ticketing service of a running platform.
    #[arg(long, requires = "conversation")]
    ticketing: Option<String>,
    /// Account [default: a fresh bench-<random>].
    #[arg(long)]
    account: Option<String>,
}

/// A small deterministic generator (the same tickets every run).
struct Words {
    state: u64,
    vocabulary: usize,
}

impl Words {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Word `i` of the vocabulary: letters only, so each is one search token.
    fn word(i: usize) -> String {
        let mut n = i + 26 * 27;
        let mut w = String::new();
        while n > 0 {
            w.push((b'a' + (n % 26) as u8) as char);
            n /= 26;
        }
        w
    }

    fn pick(&mut self) -> String {
        Self::word((self.next() % self.vocabulary as u64) as usize)
    }

    fn text(&mut self, n: usize) -> String {
        (0..n).map(|_| self.pick()).collect::<Vec<_>>().join(" ")
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let account = args
        .account
        .clone()
        .unwrap_or_else(|| load::fresh_account("bench"));
    let place = load::place(args.conversation.as_deref());
    println!(
        "measuring: {} chats of {} messages turned into tickets, the account filled to {} tickets, {} searches, account {account}, on {place}",
        args.chats, args.chat_messages, args.tickets, args.searches
    );
    match (&args.conversation, &args.ticketing) {
        (Some(conversation), Some(ticketing)) => {
            let tokens = Tokens::new(&load::jwt_secret_from_env()?, &account);
            bench(&args, conversation, ticketing, &tokens).await
        }
        _ => {
            let servers = load::own_servers().await?;
            let p = Platform::start_with(1, |c| c.database_max_connections = 30).await;
            let tokens = Tokens::new(&p.env.jwt_secret, &account);
            let result = bench(&args, &p.conversation.url(), &p.ticketing[0].url(), &tokens).await;
            p.stop().await;
            servers.stop().await;
            result
        }
    }
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64().max(1e-9)
}

async fn bench(
    args: &Args,
    conversation: &str,
    ticketing: &str,
    tokens: &Tokens,
) -> anyhow::Result<()> {
    let conv_channels = load::connect(conversation, 4).await?;
    let ticket_channels = load::connect(ticketing, 4).await?;
    let conv = |i: usize| ConversationServiceClient::new(conv_channels[i % 4].clone());
    let tickets = |i: usize| TicketingServiceClient::new(ticket_channels[i % 4].clone());
    let agent = tokens.mint("bench-agent", Role::Agent);
    let inbox = load::create_inbox(&mut conv(0), tokens, "Web").await?;

    // 1. Chats, then tickets made of them.
    let chats: Vec<String> = futures::stream::iter(0..args.chats)
        .map(|i| {
            let (mut client, key) = (conv(i), inbox.public_key.clone());
            let mut words = Words {
                state: 0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1),
                vocabulary: args.vocabulary,
            };
            let extra = args.chat_messages.saturating_sub(1);
            async move {
                let started = client
                    .start_conversation(Request::new(StartConversationRequest {
                        inbox_public_key: key,
                        contact: Some(Contact {
                            name: format!("Visitor {i}"),
                            ..Default::default()
                        }),
                        initial_message: words.text(12),
                        ..Default::default()
                    }))
                    .await
                    .context("starting a chat")?
                    .into_inner();
                let id = started.conversation.map(|c| c.id).unwrap_or_default();
                for _ in 0..extra {
                    let req = SendMessageRequest {
                        conversation_id: id.clone(),
                        content: words.text(12),
                        ..Default::default()
                    };
                    client
                        .send_message(authed(req, &started.visitor_token))
                        .await
                        .context("a chat message")?;
                }
                anyhow::Ok(id)
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect()
        .await?;
    let begun = Instant::now();
    let mut latencies: Vec<u64> = futures::stream::iter(chats.iter().enumerate())
        .map(|(i, id)| {
            let (mut client, token) = (tickets(i), agent.clone());
            let req = CreateTicketFromConversationRequest {
                conversation_id: id.clone(),
                ..Default::default()
            };
            async move {
                let t = Instant::now();
                client
                    .create_ticket_from_conversation(authed(req, &token))
                    .await
                    .context("a ticket from a chat")?;
                anyhow::Ok(t.elapsed().as_micros() as u64)
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect()
        .await?;
    let took = begun.elapsed();
    latencies.sort_unstable();
    println!(
        "from chats: {} tickets in {:.2}s = {:.0} tickets/s; CreateTicketFromConversation {}",
        chats.len(),
        took.as_secs_f64(),
        rate(chats.len(), took),
        summary(&latencies)
    );

    // 2. The account filled up.
    let more = args.tickets.saturating_sub(chats.len());
    let begun = Instant::now();
    let mut latencies: Vec<u64> = futures::stream::iter(0..more)
        .map(|i| {
            let (mut client, token) = (tickets(i), agent.clone());
            let mut words = Words {
                state: 0x2545_f491_4f6c_dd1d ^ (i as u64 + 1),
                vocabulary: args.vocabulary,
            };
            let req = CreateTicketRequest {
                ticket: Some(Ticket {
                    subject: words.text(4),
                    description: words.text(20),
                    ..Default::default()
                }),
                request_id: String::new(),
            };
            async move {
                let t = Instant::now();
                client
                    .create_ticket(authed(req, &token))
                    .await
                    .context("a ticket")?;
                anyhow::Ok(t.elapsed().as_micros() as u64)
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect()
        .await?;
    let took = begun.elapsed();
    latencies.sort_unstable();
    println!(
        "created: {more} tickets in {:.1}s = {:.0} tickets/s; CreateTicket {}",
        took.as_secs_f64(),
        rate(more, took),
        summary(&latencies)
    );

    // 3. Searches, one after another.
    let mut words = Words {
        state: 0x1234_5678_9abc_def1,
        vocabulary: args.vocabulary,
    };
    let mut client = tickets(0);
    let mut latencies = Vec::with_capacity(args.searches);
    let (mut found, mut empty) = (0usize, 0usize);
    for i in 0..args.searches {
        let query = if i % 2 == 0 {
            words.pick()
        } else {
            format!("{} {}", words.pick(), words.pick())
        };
        let req = ListTicketsRequest {
            query,
            page_size: 25,
            order_by: if i % 4 == 1 {
                "-updated".into()
            } else {
                String::new()
            },
            ..Default::default()
        };
        let t = Instant::now();
        let page = client
            .list_tickets(authed(req, &agent))
            .await
            .context("a search")?
            .into_inner();
        latencies.push(t.elapsed().as_micros() as u64);
        found += page.tickets.len();
        empty += usize::from(page.tickets.is_empty());
    }
    latencies.sort_unstable();
    println!(
        "search: {} ListTickets with a query over {} tickets: {} ({} results on average, {} empty); p90 {:.1} ms",
        args.searches,
        args.tickets.max(chats.len()),
        summary(&latencies),
        found / args.searches.max(1),
        empty,
        percentile(&latencies, 0.9) as f64 / 1000.0
    );
    Ok(())
}
