//! Routing scenarios across the conversation and routing services, with real NATS
//! and PostgreSQL.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use helpdesk_kit::auth::Role;
use helpdesk_proto::conversation::v1::{
    ConversationStatus, ListMessagesRequest, MessageKind, SendMessageRequest,
};
use helpdesk_proto::routing::v1::*;
use helpdesk_tests::platform::{ACCOUNT, Platform, authed, eventually};
use helpdesk_tests::prometheus_text;

const WAIT: Duration = Duration::from_secs(20);

/// The highest number of simultaneously open assignments each agent ever had,
/// from routing's assignment history.
async fn peak_load(p: &Platform) -> HashMap<String, i64> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT a.agent_id, max((SELECT count(*) FROM assignment_log b WHERE b.agent_id = a.agent_id
              AND b.assigned_at <= a.assigned_at AND (b.released_at IS NULL OR b.released_at > a.assigned_at)))
         FROM assignment_log a GROUP BY a.agent_id",
    )
    .fetch_all(&p.routers[0].pool)
    .await
    .expect("peak");
    rows.into_iter().collect()
}

#[tokio::test]
async fn three_hundred_chats_two_routers_no_double_assignment_no_overload() {
    let p = Platform::start(2).await;
    let mut capacity = HashMap::new();
    for i in 0..20 {
        let id = format!("agent-{i:02}");
        let max = 1 + (i % 4);
        p.agent(&id, max, &[], &[]).await;
        p.presence(&id, Presence::Online).await;
        capacity.insert(id, i64::from(max));
    }
    let total_capacity: i64 = capacity.values().sum();
    let inbox = p.inbox().await;
    // 300 visitors start at once.
    let mut starts = Vec::new();
    for i in 0..300 {
        let p_conv = p.conv().await;
        let inbox = inbox.clone();
        starts.push(tokio::spawn(async move {
            let mut c = p_conv;
            let req =
                tonic::Request::new(helpdesk_proto::conversation::v1::StartConversationRequest {
                    inbox_public_key: inbox.public_key.clone(),
                    initial_message: format!("hello {i}"),
                    ..Default::default()
                });
            c.start_conversation(req)
                .await
                .expect("start")
                .into_inner()
                .conversation
                .map(|c| c.id)
                .unwrap_or_default()
        }));
    }
    let mut ids = Vec::new();
    for s in starts {
        ids.push(s.await.expect("join"));
    }
    let pool = &p.routers[0].pool;
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(pool)
            .await
            .expect("count")
    };
    // Every chat is assigned or queued; capacity is full.
    let settled = eventually(Duration::from_secs(60), || async {
        let (a, q) = (
            count("SELECT count(*) FROM assignments").await,
            count("SELECT count(*) FROM queue").await,
        );
        (a + q == 300 && a == total_capacity).then_some(())
    })
    .await;
    assert!(
        settled.is_some(),
        "all chats assigned or queued, capacity used"
    );

    // Drain: resolve assigned chats until every chat has been served.
    let mut resolved = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while resolved.len() < 300 && tokio::time::Instant::now() < deadline {
        let open: Vec<String> = sqlx::query_scalar("SELECT conversation_id::text FROM assignments")
            .fetch_all(&p.routers[0].pool)
            .await
            .expect("assignments");
        let fresh: Vec<String> = open
            .into_iter()
            .filter(|id| !resolved.contains(id))
            .take(40)
            .collect();
        if fresh.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for id in fresh {
            p.set_status(&id, ConversationStatus::Resolved).await;
            resolved.insert(id);
        }
    }
    let drained = (resolved.len() == 300).then_some(());
    assert!(
        drained.is_some(),
        "the queue drains fully as chats are resolved ({} served)",
        resolved.len()
    );
    assert_eq!(count("SELECT count(*) FROM queue").await, 0);
    // Each conversation was assigned exactly once, and never beyond capacity.
    assert_eq!(count("SELECT count(*) FROM assignment_log").await, 300);
    assert_eq!(
        count("SELECT count(DISTINCT conversation_id) FROM assignment_log").await,
        300
    );
    for (agent, peak) in peak_load(&p).await {
        assert!(
            peak <= capacity[&agent],
            "{agent} peaked at {peak} > {}",
            capacity[&agent]
        );
    }
    // The conversation service learned every assignee.
    let sample = &ids[..10];
    for id in sample {
        let synced = eventually(WAIT, || async {
            Some(p.conversation(id).await.assignee_id).filter(|a| !a.is_empty())
        })
        .await;
        assert!(synced.is_some(), "assignee synced for {id}");
    }
    p.stop().await;
}

#[tokio::test]
async fn urgent_vip_chat_queued_last_is_assigned_first() {
    let p = Platform::start(1).await;
    p.agent("ana", 1, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (busy, _) = p.chat(&inbox, "first", &[]).await;
    assert_eq!(p.wait_assigned(&busy, WAIT).await.as_deref(), Some("ana"));
    let mut normal = Vec::new();
    for i in 0..3 {
        let (id, visitor) = p.chat(&inbox, &format!("normal {i}"), &[]).await;
        eventually(WAIT, || async { p.is_queued(&id).await.then_some(()) })
            .await
            .expect("queued");
        assert_eq!(
            p.told_position(&id, &visitor, WAIT).await,
            Some(i + 1),
            "each normal chat joins at the back"
        );
        normal.push(id);
    }
    let (vip, visitor) = p
        .chat(&inbox, "I am important", &[("vip_level", "gold")])
        .await;
    eventually(WAIT, || async { p.is_queued(&vip).await.then_some(()) })
        .await
        .expect("vip queued");
    assert_eq!(
        p.told_position(&vip, &visitor, WAIT).await,
        Some(1),
        "the urgent chat is told it is first, ahead of the normal ones"
    );
    // The workbench sees the queue in order, and the stats count it.
    let mut r = p.routing(0).await;
    let queue = r
        .list_queue(authed(ListQueueRequest::default(), &p.supervisor()))
        .await
        .expect("queue")
        .into_inner()
        .entries;
    let order: Vec<&str> = queue.iter().map(|e| e.conversation_id.as_str()).collect();
    assert_eq!(
        order,
        vec![
            vip.as_str(),
            normal[0].as_str(),
            normal[1].as_str(),
            normal[2].as_str()
        ]
    );
    assert_eq!(queue[0].priority_class, PriorityClass::Urgent as i32);
    let stats = r
        .get_queue_stats(authed(GetQueueStatsRequest::default(), &p.supervisor()))
        .await
        .expect("stats")
        .into_inner();
    let pool = stats
        .teams
        .iter()
        .find(|t| t.team_id.is_empty())
        .expect("account queue");
    assert_eq!(
        (
            pool.waiting,
            pool.agents_online,
            pool.agents_available,
            pool.assigned_today
        ),
        (4, 1, 0, 1)
    );
    p.set_status(&busy, ConversationStatus::Resolved).await;
    assert_eq!(
        p.wait_assigned(&vip, WAIT).await.as_deref(),
        Some("ana"),
        "the VIP chat goes first"
    );
    for id in &normal {
        assert!(p.is_queued(id).await, "normal chats still wait");
    }
    p.set_status(&vip, ConversationStatus::Resolved).await;
    assert_eq!(
        p.wait_assigned(&normal[0], WAIT).await.as_deref(),
        Some("ana"),
        "then the longest waiting"
    );
    p.stop().await;
}

#[tokio::test]
async fn visitors_see_queue_positions_strictly_decrease() {
    let p = Platform::start(1).await;
    p.agent("ana", 1, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (first, _) = p.chat(&inbox, "first", &[]).await;
    p.wait_assigned(&first, WAIT).await.expect("assigned");
    let mut waiting = Vec::new();
    for i in 0..4 {
        let (id, token) = p.chat(&inbox, &format!("waiting {i}"), &[]).await;
        eventually(WAIT, || async { p.is_queued(&id).await.then_some(()) })
            .await
            .expect("queued");
        waiting.push((id, token));
    }
    // Each visitor watches its own position.
    let mut watchers = Vec::new();
    for (id, token) in &waiting {
        watchers.push(follow_position(&p, id, token).await);
    }
    // Another visitor cannot watch someone else's position.
    let e = p
        .routing(0)
        .await
        .get_queue_position(authed(
            GetQueuePositionRequest {
                conversation_id: waiting[0].0.clone(),
            },
            &waiting[1].1,
        ))
        .await
        .expect_err("not theirs");
    assert_eq!(e.code(), tonic::Code::NotFound);
    // Operators see the same queue in the metrics: four waiting, for a moment.
    let queue = prometheus_text::until(Duration::from_secs(15), |samples| {
        let at = |name| prometheus_text::find(samples, name, &[("account", ACCOUNT)]);
        let length = at("helpdesk_queue_length")?.number();
        (length == 4.0).then(|| at("helpdesk_queue_oldest_seconds").map(|s| s.number()))?
    })
    .await
    .expect("the queue's length and oldest wait in the metrics");
    assert!((0.0..60.0).contains(&queue), "oldest wait {queue} s");
    // Serve them one by one, a little more than a second apart: positions reach a
    // visitor at most once a second, so each move is seen.
    let mut current = first;
    for (id, _) in &waiting {
        tokio::time::sleep(Duration::from_millis(1_300)).await;
        p.set_status(&current, ConversationStatus::Resolved).await;
        p.wait_assigned(id, WAIT).await.expect("next assigned");
        current = id.clone();
    }
    for (i, w) in watchers.into_iter().enumerate() {
        let seen: Vec<_> = w
            .await
            .expect("watcher")
            .into_iter()
            .map(|(_, pos)| {
                (
                    pos.position,
                    pos.estimated_wait_seconds,
                    pos.assigned_agent_id,
                )
            })
            .collect();
        let positions: Vec<i32> = seen
            .iter()
            .filter(|s| s.2.is_empty())
            .map(|s| s.0)
            .collect();
        assert_eq!(
            positions.first().copied(),
            Some(i as i32 + 1),
            "starts at its place: {seen:?}"
        );
        assert!(
            positions.windows(2).all(|w| w[1] < w[0]),
            "strictly decreasing: {seen:?}"
        );
        assert_eq!(positions.len(), i + 1, "one update per move: {seen:?}");
        assert_eq!(
            seen.last().map(|s| s.2.as_str()),
            Some("ana"),
            "ends assigned: {seen:?}"
        );
        assert!(
            seen.iter().filter(|s| s.2.is_empty()).all(|s| s.1 > 0),
            "every queued update has an estimate"
        );
    }
    // Each waited more than a second; the emptied queue leaves the gauge.
    let samples = prometheus_text::parse(&helpdesk_kit::metrics::render());
    let waits = |name| prometheus_text::find(&samples, name, &[("team", "")]).map(|s| s.number());
    assert_eq!(waits("helpdesk_queue_wait_seconds_count"), Some(4.0));
    assert!(waits("helpdesk_queue_wait_seconds_sum").is_some_and(|s| s >= 4.0));
    let emptied = prometheus_text::until(Duration::from_secs(15), |samples| {
        prometheus_text::find(samples, "helpdesk_queue_length", &[("account", ACCOUNT)])
            .is_none()
            .then_some(())
    })
    .await;
    assert!(emptied.is_some(), "an empty queue is no longer reported");
    p.stop().await;
}

#[tokio::test]
async fn reopened_chat_goes_back_to_its_agent_only_when_online_with_room() {
    let p = Platform::start(1).await;
    p.agent("ana", 2, &[], &[]).await;
    p.agent("bob", 2, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (conv, visitor) = p.chat(&inbox, "help", &[]).await;
    assert_eq!(p.wait_assigned(&conv, WAIT).await.as_deref(), Some("ana"));
    let write = |text: &str| {
        authed(
            SendMessageRequest {
                conversation_id: conv.clone(),
                content: text.into(),
                ..Default::default()
            },
            &visitor,
        )
    };
    // Resolved, customer writes again, Ana is online: back to Ana.
    p.set_status(&conv, ConversationStatus::Resolved).await;
    eventually(WAIT, || async {
        p.assignee(&conv).await.is_none().then_some(())
    })
    .await
    .expect("released");
    p.presence("bob", Presence::Online).await;
    p.conv()
        .await
        .send_message(write("one more question"))
        .await
        .expect("write");
    assert_eq!(
        p.wait_assigned(&conv, WAIT).await.as_deref(),
        Some("ana"),
        "back to its last agent"
    );
    // Resolved again, Ana goes offline: the reopened chat is queued, then Bob gets it.
    p.set_status(&conv, ConversationStatus::Resolved).await;
    eventually(WAIT, || async {
        p.assignee(&conv).await.is_none().then_some(())
    })
    .await
    .expect("released");
    p.presence("ana", Presence::Offline).await;
    p.presence("bob", Presence::Away).await;
    p.conv()
        .await
        .send_message(write("and another"))
        .await
        .expect("write");
    eventually(WAIT, || async { p.is_queued(&conv).await.then_some(()) })
        .await
        .expect("requeued, not given to offline Ana");
    p.presence("bob", Presence::Online).await;
    assert_eq!(p.wait_assigned(&conv, WAIT).await.as_deref(), Some("bob"));
    p.stop().await;
}

#[tokio::test]
async fn overflow_leaves_a_message_or_moves_to_the_overflow_team() {
    let p = Platform::start(1).await;
    let overflow_team = p.team("overflow").await;
    let inbox = p.inbox().await;
    p.settings(RoutingSettings {
        max_queue_length: 1,
        overflow_action: OverflowAction::LeaveMessage as i32,
        leave_message_text: "We are swamped; leave a message.".into(),
        ..Default::default()
    })
    .await;
    let (first, _) = p.chat(&inbox, "first", &[]).await;
    eventually(WAIT, || async { p.is_queued(&first).await.then_some(()) })
        .await
        .expect("queued");
    let (second, visitor) = p.chat(&inbox, "second", &[]).await;
    // Leave-a-message: the visitor is told and the conversation goes pending.
    let pending = eventually(WAIT, || async {
        let c = p.conversation(&second).await;
        (c.status == ConversationStatus::Pending as i32).then_some(c)
    })
    .await;
    assert!(pending.is_some(), "overflowed chat is pending");
    assert!(!p.is_queued(&second).await);
    let messages = p
        .conv()
        .await
        .list_messages(authed(
            ListMessagesRequest {
                conversation_id: second.clone(),
                ..Default::default()
            },
            &visitor,
        ))
        .await
        .expect("messages")
        .into_inner()
        .messages;
    assert!(
        messages
            .iter()
            .any(|m| m.content == "We are swamped; leave a message."
                && m.kind == MessageKind::Outgoing as i32),
        "{messages:?}"
    );

    // Overflow team: the next chat goes to an agent of the overflow team.
    p.agent("olga", 3, &[&overflow_team], &[]).await;
    p.presence("olga", Presence::Online).await;
    // Olga takes the first chat (any team may serve the account-wide queue).
    assert_eq!(p.wait_assigned(&first, WAIT).await.as_deref(), Some("olga"));
    p.settings(RoutingSettings {
        max_wait_seconds: 2,
        overflow_action: OverflowAction::OverflowTeam as i32,
        overflow_team_id: overflow_team.id.clone(),
        ..Default::default()
    })
    .await;
    let sales = p.team("sales").await;
    p.agent("sam", 1, &[&sales], &[]).await;
    p.routing(0)
        .await
        .create_routing_rule(authed(
            CreateRoutingRuleRequest {
                rule: Some(RoutingRule {
                    name: "sales".into(),
                    target_team_id: sales.id.clone(),
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("rule");
    let (third, _) = p.chat(&inbox, "buy", &[]).await;
    eventually(WAIT, || async { p.is_queued(&third).await.then_some(()) })
        .await
        .expect("waits for sales (nobody online)");
    assert_eq!(
        p.wait_assigned(&third, WAIT).await.as_deref(),
        Some("olga"),
        "after the longest wait: the overflow team"
    );
    let moved = eventually(WAIT, || async {
        (p.conversation(&third).await.team_id == overflow_team.id).then_some(())
    })
    .await;
    assert!(moved.is_some(), "the conversation is in the overflow team");
    p.stop().await;
}

#[tokio::test]
async fn supervisors_assign_over_capacity_only_explicitly_and_agents_pick_in_pooled_mode() {
    let p = Platform::start(1).await;
    p.agent("ana", 1, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (a, _) = p.chat(&inbox, "a", &[]).await;
    p.wait_assigned(&a, WAIT).await.expect("assigned");
    let (b, _) = p.chat(&inbox, "b", &[]).await;
    eventually(WAIT, || async { p.is_queued(&b).await.then_some(()) })
        .await
        .expect("queued");
    let mut r = p.routing(0).await;
    let assign = |allow| {
        authed(
            AssignConversationRequest {
                conversation_id: b.clone(),
                agent_id: "ana".into(),
                allow_over_capacity: allow,
            },
            &p.supervisor(),
        )
    };
    let e = r
        .assign_conversation(assign(false))
        .await
        .expect_err("over capacity");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    let e = r
        .assign_conversation(authed(
            AssignConversationRequest {
                conversation_id: b.clone(),
                agent_id: "ana".into(),
                allow_over_capacity: true,
            },
            &p.token("ana", Role::Agent),
        ))
        .await
        .expect_err("agents cannot");
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    r.assign_conversation(assign(true))
        .await
        .expect("supervisor may exceed explicitly");
    assert_eq!(p.assignee(&b).await.as_deref(), Some("ana"));

    // Pooled mode: Bob picks the head of the queue himself.
    p.settings(RoutingSettings {
        pooled_mode: true,
        ..Default::default()
    })
    .await;
    p.agent("bob", 1, &[], &[]).await;
    p.presence("bob", Presence::Away).await;
    let (c, _) = p.chat(&inbox, "c", &[]).await;
    eventually(WAIT, || async { p.is_queued(&c).await.then_some(()) })
        .await
        .expect("queued");
    let e = r
        .pick_from_queue(authed(
            PickFromQueueRequest::default(),
            &p.token("bob", Role::Agent),
        ))
        .await
        .expect_err("away");
    assert_eq!(e.code(), tonic::Code::FailedPrecondition);
    // Online in pooled mode: nothing is pushed to Bob; the chat waits for a pick.
    p.presence("bob", Presence::Online).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        p.is_queued(&c).await,
        "pooled mode: no automatic assignment, even after a sweep"
    );
    let picked = r
        .pick_from_queue(authed(
            PickFromQueueRequest::default(),
            &p.token("bob", Role::Agent),
        ))
        .await
        .expect("pick")
        .into_inner();
    assert_eq!(
        (picked.conversation_id.as_str(), picked.agent_id.as_str()),
        (c.as_str(), "bob")
    );
    assert_eq!(picked.reason, AssignReason::Picked as i32);
    assert_eq!(p.assignee(&c).await.as_deref(), Some("bob"));
    let e = r
        .pick_from_queue(authed(
            PickFromQueueRequest::default(),
            &p.token("bob", Role::Agent),
        ))
        .await
        .expect_err("empty");
    assert_eq!(
        e.code(),
        tonic::Code::FailedPrecondition,
        "nothing left to pick"
    );
    p.stop().await;
}

async fn rule(p: &Platform, rule: RoutingRule) {
    p.routing(0)
        .await
        .create_routing_rule(authed(
            CreateRoutingRuleRequest { rule: Some(rule) },
            &p.admin(),
        ))
        .await
        .expect("rule");
}

#[tokio::test]
async fn skill_routing_by_keyword_then_falls_back_to_the_whole_team() {
    let p = Platform::start(1).await;
    p.settings(RoutingSettings {
        skill_fallback_seconds: 2,
        ..Default::default()
    })
    .await;
    let billing = p.team("billing").await;
    rule(
        &p,
        RoutingRule {
            name: "refunds".into(),
            condition: Some(RuleCondition {
                keywords: vec!["refund".into()],
                ..Default::default()
            }),
            target_team_id: billing.id.clone(),
            required_skills: vec!["refunds".into()],
            ..Default::default()
        },
    )
    .await;
    p.agent(
        "sara",
        1,
        &[&billing],
        &[("refunds", SkillLevel::Primary as i32)],
    )
    .await;
    p.agent("ben", 2, &[&billing], &[]).await;
    p.agent("otto", 2, &[], &[]).await;
    for a in ["sara", "ben", "otto"] {
        p.presence(a, Presence::Online).await;
    }
    let inbox = p.inbox().await;
    let (first, _) = p.chat(&inbox, "I want a refund for order 42", &[]).await;
    assert_eq!(
        p.wait_assigned(&first, WAIT).await.as_deref(),
        Some("sara"),
        "the skilled agent"
    );
    let (general, _) = p.chat(&inbox, "hello there", &[]).await;
    // No rule: any agent; least busy, equal load and never assigned: ties break on id.
    assert_eq!(
        p.wait_assigned(&general, WAIT).await.as_deref(),
        Some("ben"),
        "no rule: anyone"
    );
    // Sara is full; Ben is in the team without the skill; Otto is free but not in the team.
    let started = tokio::time::Instant::now();
    let (second, _) = p.chat(&inbox, "refund please", &[]).await;
    eventually(WAIT, || async { p.is_queued(&second).await.then_some(()) })
        .await
        .expect("waits for a skilled agent");
    assert_eq!(
        p.wait_assigned(&second, WAIT).await.as_deref(),
        Some("ben"),
        "after the fallback wait: the whole team"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not before the fallback wait"
    );
    let team = eventually(WAIT, || async {
        Some(p.conversation(&second).await.team_id).filter(|t| !t.is_empty())
    })
    .await;
    assert_eq!(
        team.as_deref(),
        Some(billing.id.as_str()),
        "the conversation service knows the team"
    );
    p.stop().await;
}

#[tokio::test]
async fn business_hours_holiday_in_tokyo_leave_message_or_wait_for_opening() {
    let p = Platform::start(1).await;
    p.agent("ana", 3, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let tokyo = chrono::FixedOffset::east_opt(9 * 3600).expect("offset");
    let today = chrono::Utc::now().with_timezone(&tokyo).date_naive();
    let all_day: Vec<DaySchedule> = (1..=7)
        .map(|d| DaySchedule {
            weekday: d,
            ranges: vec![TimeRange {
                start: "00:00".into(),
                end: "24:00".into(),
            }],
        })
        .collect();
    let hours = |policy: OutsideHoursPolicy| BusinessHours {
        inbox_id: inbox.id.clone(),
        time_zone: "Asia/Tokyo".into(),
        weekly: all_day.clone(),
        holidays: vec![today.format("%Y-%m-%d").to_string()],
        out_of_office_message: "We are closed for the holiday.".into(),
        outside_hours_policy: policy as i32,
        ..Default::default()
    };
    let mut r = p.routing(0).await;
    r.set_business_hours(authed(
        SetBusinessHoursRequest {
            hours: Some(hours(OutsideHoursPolicy::LeaveMessage)),
        },
        &p.admin(),
    ))
    .await
    .expect("hours");
    // Closed: the visitor is told and the chat goes pending, though Ana is free.
    let (closed, visitor) = p.chat(&inbox, "hello?", &[]).await;
    let pending = eventually(WAIT, || async {
        let c = p.conversation(&closed).await;
        (c.status == ConversationStatus::Pending as i32).then_some(())
    })
    .await;
    assert!(pending.is_some(), "outside hours: leave a message");
    assert!(p.assignee(&closed).await.is_none());
    let transcript = p.transcript(&closed, &visitor).await;
    assert!(
        transcript
            .iter()
            .any(|m| m.content == "We are closed for the holiday."),
        "{transcript:?}"
    );

    // Wait policy: queued until the next opening, midnight in Tokyo.
    r.set_business_hours(authed(
        SetBusinessHoursRequest {
            hours: Some(hours(OutsideHoursPolicy::Wait)),
        },
        &p.admin(),
    ))
    .await
    .expect("hours");
    let (waiting, visitor) = p.chat(&inbox, "anyone?", &[]).await;
    eventually(WAIT, || async { p.is_queued(&waiting).await.then_some(()) })
        .await
        .expect("queued until opening");
    let pos = r
        .get_queue_position(authed(
            GetQueuePositionRequest {
                conversation_id: waiting.clone(),
            },
            &visitor,
        ))
        .await
        .expect("position")
        .into_inner();
    let opens = pos
        .opens_at
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, 0))
        .expect("opens_at");
    let expected = today
        .succ_opt()
        .expect("tomorrow")
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_local_timezone(tokyo)
        .single()
        .expect("time");
    assert_eq!(opens, expected.with_timezone(&chrono::Utc));
    assert!(
        pos.estimated_wait_seconds as i64 >= (opens - chrono::Utc::now()).num_seconds() - 5,
        "the estimate includes the time until opening"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        p.assignee(&waiting).await.is_none(),
        "not assigned while closed, even after a sweep"
    );
    p.stop().await;
}

#[tokio::test]
async fn an_agent_going_offline_keeps_or_requeues_chats_per_setting() {
    let p = Platform::start(1).await;
    p.agent("ana", 2, &[], &[]).await;
    p.agent("bob", 2, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (kept, _) = p.chat(&inbox, "one", &[]).await;
    assert_eq!(p.wait_assigned(&kept, WAIT).await.as_deref(), Some("ana"));
    p.presence("ana", Presence::Offline).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        p.assignee(&kept).await.as_deref(),
        Some("ana"),
        "keep (default): the chat stays"
    );

    p.settings(RoutingSettings {
        offline_policy: OfflinePolicy::Requeue as i32,
        ..Default::default()
    })
    .await;
    p.presence("ana", Presence::Online).await;
    p.presence("bob", Presence::Online).await;
    p.presence("ana", Presence::Offline).await;
    assert_eq!(
        eventually(WAIT, || async {
            p.assignee(&kept).await.filter(|a| a == "bob")
        })
        .await
        .as_deref(),
        Some("bob"),
        "requeue: the chat moves to an online agent"
    );
    let synced = eventually(WAIT, || async {
        (p.conversation(&kept).await.assignee_id == "bob").then_some(())
    })
    .await;
    assert!(synced.is_some(), "the conversation shows the new assignee");
    p.stop().await;
}

#[tokio::test]
async fn last_agent_capacity_raise_performance_figures_and_what_the_visitor_reads() {
    let p = Platform::start(1).await;
    p.settings(RoutingSettings {
        default_strategy: Strategy::LastAgent as i32,
        ..Default::default()
    })
    .await;
    p.agent("ana", 1, &[], &[]).await;
    p.agent("bob", 3, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (first, visitor) = p.chat(&inbox, "hi", &[]).await;
    assert_eq!(p.wait_assigned(&first, WAIT).await.as_deref(), Some("ana"));
    // The visitor reads who joined.
    let joined = eventually(WAIT, || async {
        p.transcript(&first, &visitor).await.into_iter().find(|m| {
            m.content == "Agent ana joined the conversation"
                && m.kind == MessageKind::Activity as i32
        })
    })
    .await;
    assert!(joined.is_some(), "the visitor sees the agent join");
    // Resolved and rated: the agent's figures follow.
    p.set_status(&first, ConversationStatus::Resolved).await;
    p.conv()
        .await
        .rate_conversation(authed(
            helpdesk_proto::conversation::v1::RateConversationRequest {
                conversation_id: first.clone(),
                rating: 4,
                comment: "quick".into(),
            },
            &visitor,
        ))
        .await
        .expect("rate");
    let figures = agent_once(&p, "ana", |a| a.resolved_count == 1 && a.csat_count == 1)
        .await
        .expect("figures kept from events");
    assert!((figures.csat_average - 4.0).abs() < f64::EPSILON);
    // Reopened and resolved again, then rated again: still one resolution and one
    // rating (the newer one), not two of each.
    p.set_status(&first, ConversationStatus::Open).await;
    p.set_status(&first, ConversationStatus::Resolved).await;
    p.conv()
        .await
        .rate_conversation(authed(
            helpdesk_proto::conversation::v1::RateConversationRequest {
                conversation_id: first.clone(),
                rating: 2,
                comment: "changed my mind".into(),
            },
            &visitor,
        ))
        .await
        .expect("rate again");
    let figures = agent_once(&p, "ana", |a| (a.csat_average - 4.0).abs() > f64::EPSILON)
        .await
        .expect("the new rating counted");
    assert_eq!((figures.resolved_count, figures.csat_count), (1, 1));
    assert!((figures.csat_average - 2.0).abs() < f64::EPSILON);

    // Bob is online and less busy, but the returning contact goes to its last agent.
    p.presence("bob", Presence::Online).await;
    let started = p
        .conv()
        .await
        .start_conversation(authed(
            helpdesk_proto::conversation::v1::StartConversationRequest {
                inbox_public_key: inbox.public_key.clone(),
                initial_message: "me again".into(),
                ..Default::default()
            },
            &visitor,
        ))
        .await
        .expect("returning visitor")
        .into_inner();
    let second = started.conversation.expect("conversation").id;
    assert_eq!(
        p.wait_assigned(&second, WAIT).await.as_deref(),
        Some("ana"),
        "the last agent who served this contact"
    );

    // A third chat waits (Ana full, Bob away), then Ana's capacity is raised.
    p.presence("bob", Presence::Away).await;
    let (third, third_visitor) = p.chat(&inbox, "hello", &[]).await;
    eventually(WAIT, || async { p.is_queued(&third).await.then_some(()) })
        .await
        .expect("queued");
    assert_eq!(
        p.told_position(&third, &third_visitor, WAIT).await,
        Some(1),
        "the visitor reads its place in the queue"
    );
    p.routing(0)
        .await
        .update_agent(authed(
            UpdateAgentRequest {
                agent: Some(Agent {
                    id: "ana".into(),
                    max_chats: 2,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["max_chats".into()],
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("raise capacity");
    assert_eq!(
        p.wait_assigned(&third, WAIT).await.as_deref(),
        Some("ana"),
        "more room: assigned at once"
    );
    p.stop().await;
}

/// The queue is listed a page at a time, in queue order, with one query per page.
#[tokio::test]
async fn the_queue_is_listed_in_pages() {
    let p = Platform::start(1).await;
    let inbox = p.inbox().await;
    let mut queued = Vec::new();
    for i in 0..5 {
        let (id, _) = p.chat(&inbox, &format!("waiting {i}"), &[]).await;
        eventually(WAIT, || async { p.is_queued(&id).await.then_some(()) })
            .await
            .expect("queued (nobody online)");
        queued.push(id);
    }
    let mut r = p.routing(0).await;
    let mut listed = Vec::new();
    let mut pages = 0;
    let mut page_token = String::new();
    loop {
        let page = r
            .list_queue(authed(
                ListQueueRequest {
                    page_size: 2,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
                &p.supervisor(),
            ))
            .await
            .expect("page")
            .into_inner();
        pages += 1;
        assert!(page.entries.len() <= 2);
        assert!(
            page.entries
                .iter()
                .all(|e| !e.contact_id.is_empty() && !e.inbox_id.is_empty())
        );
        listed.extend(page.entries.into_iter().map(|e| e.conversation_id));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    assert_eq!(listed, queued, "every entry once, in queue order");
    let e = r
        .list_queue(authed(
            ListQueueRequest {
                page_token: "not-a-token".into(),
                ..Default::default()
            },
            &p.supervisor(),
        ))
        .await
        .expect_err("bad token");
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
}

/// Agent `id` as routing reports it, once `ready` holds (within `WAIT`).
async fn agent_once(p: &Platform, id: &str, ready: impl Fn(&Agent) -> bool) -> Option<Agent> {
    eventually(WAIT, || async {
        let a = p
            .routing(0)
            .await
            .get_agent(authed(GetAgentRequest { id: id.into() }, &p.admin()))
            .await
            .ok()?
            .into_inner();
        ready(&a).then_some(a)
    })
    .await
}

/// Workbench heartbeats, presence switches and supervisor assignments race with the
/// timers that act on the same agents and chats (idle deadlines coming due again and
/// again): every call answers, none with a deadlock or a conflict to retry, and no
/// agent ends over capacity.
#[tokio::test]
async fn heartbeats_presence_and_assignments_racing_with_timers_never_fail() {
    let p = Platform::start(1).await;
    let agents = ["ana", "bob", "cid", "dan"];
    for a in agents {
        p.agent(a, 2, &[], &[]).await;
        p.presence(a, Presence::Online).await;
    }
    let inbox = p.inbox().await;
    let mut chats = Vec::new();
    for i in 0..6 {
        let (id, _) = p.chat(&inbox, &format!("order {i}"), &[]).await;
        assert!(p.wait_assigned(&id, WAIT).await.is_some(), "routed");
        chats.push(id);
    }
    let until = std::time::Instant::now() + Duration::from_secs(4);

    // Every agent's idle deadline comes due over and over while its workbench beats.
    let pool = p.routers[0].pool.clone();
    let due = tokio::spawn(async move {
        while std::time::Instant::now() < until {
            sqlx::query("UPDATE timers SET due_at = now() WHERE kind = 'routing.presence_idle'")
                .execute(&pool)
                .await
                .expect("bring idle timers due");
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    });
    let mut calls = Vec::new();
    for a in agents {
        let mut routing = p.routing(0).await;
        let token = p.token(a, Role::Agent);
        calls.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut n = 0u32;
            while std::time::Instant::now() < until {
                n += 1;
                let answer = if n.is_multiple_of(4) {
                    routing
                        .set_presence(authed(
                            SetPresenceRequest {
                                agent_id: String::new(),
                                presence: Presence::Online as i32,
                            },
                            &token,
                        ))
                        .await
                        .map(|_| ())
                } else {
                    routing
                        .heartbeat(authed(HeartbeatRequest {}, &token))
                        .await
                        .map(|_| ())
                };
                if let Err(status) = answer {
                    failures.push(format!("{a}: {:?} {}", status.code(), status.message()));
                }
            }
            failures
        }));
    }
    let mut routing = p.routing(0).await;
    let supervisor = p.supervisor();
    let chats_moved = chats.clone();
    calls.push(tokio::spawn(async move {
        let mut failures = Vec::new();
        let mut n = 0usize;
        while std::time::Instant::now() < until {
            n += 1;
            let answer = routing
                .assign_conversation(authed(
                    AssignConversationRequest {
                        conversation_id: chats_moved[n % chats_moved.len()].clone(),
                        agent_id: agents[n % agents.len()].into(),
                        allow_over_capacity: false,
                    },
                    &supervisor,
                ))
                .await;
            match answer {
                // Full: refused as the supervisor asked.
                Err(s) if s.code() == tonic::Code::FailedPrecondition => {}
                Err(s) => failures.push(format!("assign: {:?} {}", s.code(), s.message())),
                Ok(_) => {}
            }
        }
        failures
    }));
    let mut failures = Vec::new();
    for call in calls {
        failures.extend(call.await.expect("join"));
    }
    due.await.expect("join");
    assert!(failures.is_empty(), "calls failed: {failures:?}");
    for (agent, peak) in peak_load(&p).await {
        assert!(peak <= 2, "{agent} had {peak} chats at once, room for 2");
    }
    p.stop().await;
}

/// Business hours and routing rules refer only to inboxes of the caller's account: an
/// inbox created a moment ago is accepted; an id that is no inbox, or another account's
/// inbox, is refused naming the field, and nothing is stored.
#[tokio::test]
async fn hours_and_rules_refer_only_to_the_accounts_own_inboxes() {
    use helpdesk_kit::grpc::violated_fields;
    use helpdesk_proto::conversation::v1::{ChannelKind, CreateInboxRequest, Inbox};
    let p = Platform::start(1).await;
    let ours = p.inbox().await;
    let theirs = p
        .conv()
        .await
        .create_inbox(authed(
            CreateInboxRequest {
                inbox: Some(Inbox {
                    name: "Theirs".into(),
                    channel_kind: ChannelKind::WebWidget as i32,
                    ..Default::default()
                }),
            },
            &p.env.token("globex", "admin", Role::Admin),
        ))
        .await
        .expect("another account's inbox")
        .into_inner();
    let nowhere = uuid::Uuid::now_v7().to_string();
    let hours = |inbox: &str| SetBusinessHoursRequest {
        hours: Some(BusinessHours {
            inbox_id: inbox.into(),
            time_zone: "Europe/Paris".into(),
            outside_hours_policy: OutsideHoursPolicy::Wait as i32,
            ..Default::default()
        }),
    };
    let mut r = p.routing(0).await;
    r.set_business_hours(authed(hours(&ours.id), &p.admin()))
        .await
        .expect("hours of an inbox created a moment ago");
    for other in [&theirs.id, &nowhere] {
        let e = r
            .set_business_hours(authed(hours(other), &p.admin()))
            .await
            .expect_err("not an inbox of the account");
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert_eq!(violated_fields(&e), vec!["hours.inbox_id"]);
        let stored = r
            .get_business_hours(authed(
                GetBusinessHoursRequest {
                    inbox_id: other.clone(),
                    ..Default::default()
                },
                &p.admin(),
            ))
            .await;
        assert_eq!(
            stored.map(|_| ()).expect_err("no hours stored").code(),
            tonic::Code::NotFound
        );
    }

    let rule = |inboxes: &[&str]| CreateRoutingRuleRequest {
        rule: Some(RoutingRule {
            name: "Web first".into(),
            condition: Some(RuleCondition {
                inbox_ids: inboxes.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    };
    let e = r
        .create_routing_rule(authed(rule(&[&ours.id, &theirs.id]), &p.admin()))
        .await
        .expect_err("another account's inbox");
    assert_eq!(violated_fields(&e), vec!["rule.condition.inbox_ids[1]"]);
    let listed = r
        .list_routing_rules(authed(ListRoutingRulesRequest {}, &p.admin()))
        .await
        .expect("rules")
        .into_inner();
    assert!(listed.rules.is_empty(), "nothing stored: {listed:?}");
    r.create_routing_rule(authed(rule(&[&ours.id]), &p.admin()))
        .await
        .expect("a rule on the account's inbox");
    p.stop().await;
}

/// A flash sale in small: chats arrive while every agent is offline and all wait; then
/// the agents come online together. Every chat is assigned once, no agent goes over
/// capacity, and a waiting visitor's position never rises and reaches it at most once
/// a second.
#[tokio::test]
async fn a_flash_sale_queues_everyone_then_drains_without_double_or_overload() {
    const AGENTS: usize = 5;
    const SEATS: i32 = 40;
    const CHATS: usize = 200;
    let p = Platform::start(1).await;
    let agents: Vec<String> = (0..AGENTS).map(|i| format!("agent-{i}")).collect();
    for a in &agents {
        p.agent(a, SEATS, &[], &[]).await;
    }
    let inbox = p.inbox().await;
    let chats: Vec<(String, String)> = futures::stream::iter(0..CHATS)
        .map(|i| {
            let (p, inbox) = (&p, &inbox);
            async move { p.chat(inbox, &format!("order {i}"), &[]).await }
        })
        .buffered(20)
        .collect()
        .await;
    assert!(
        p.wait_queue_length(CHATS, WAIT).await,
        "every chat waits while nobody is online"
    );
    // Each visitor was told a place of its own: 1 to 200, each once.
    let mut told: Vec<i32> = futures::stream::iter(&chats)
        .map(|(id, token)| async { p.told_position(id, token, WAIT).await.unwrap_or(0) })
        .buffered(20)
        .collect()
        .await;
    told.sort_unstable();
    assert_eq!(told, (1..=CHATS as i32).collect::<Vec<_>>(), "places told");

    // Visitors in the middle of the queue watch their positions.
    let mut watchers = Vec::new();
    for (id, token) in chats.iter().skip(150).take(10) {
        watchers.push(follow_position(&p, id, token).await);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let online = futures::future::join_all(agents.iter().map(|a| {
        let p = &p;
        async move {
            p.routing(0)
                .await
                .set_presence(authed(
                    SetPresenceRequest {
                        agent_id: String::new(),
                        presence: Presence::Online as i32,
                    },
                    &p.token(a, Role::Agent),
                ))
                .await
        }
    }))
    .await;
    for answer in online {
        answer.expect("going online answers");
    }
    let drained = eventually(WAIT, || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM assignments")
            .fetch_one(&p.routers[0].pool)
            .await
            .ok()?;
        (n == CHATS as i64).then_some(())
    })
    .await;
    assert!(
        drained.is_some(),
        "every chat assigned once the agents are online"
    );
    let twice: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT conversation_id FROM assignment_log GROUP BY conversation_id HAVING count(*) > 1) t",
    )
    .fetch_one(&p.routers[0].pool)
    .await
    .expect("log");
    assert_eq!(twice, 0, "no chat assigned twice");
    for (agent, peak) in peak_load(&p).await {
        assert!(
            peak <= i64::from(SEATS),
            "{agent} had {peak} chats, room for {SEATS}"
        );
    }
    for w in watchers {
        let seen: Vec<_> = w
            .await
            .expect("watcher")
            .into_iter()
            .map(|(at, pos)| (at, pos.position, !pos.assigned_agent_id.is_empty()))
            .collect();
        assert!(seen.last().is_some_and(|s| s.2), "ends assigned: {seen:?}");
        let waiting: Vec<_> = seen.iter().filter(|s| !s.2).collect();
        assert!(
            waiting.windows(2).all(|w| w[1].1 < w[0].1),
            "the position only falls: {seen:?}"
        );
        assert!(
            waiting
                .windows(2)
                .all(|w| w[1].0 - w[0].0 >= Duration::from_millis(900)),
            "at most one update a second: {seen:?}"
        );
    }
    p.stop().await;
}

/// Follows a visitor's `WatchQueuePosition` stream until it names the assigned agent
/// (or goes quiet for 30 s): each update with when it arrived.
async fn follow_position(
    p: &Platform,
    conversation: &str,
    token: &str,
) -> tokio::task::JoinHandle<Vec<(std::time::Instant, QueuePosition)>> {
    let mut stream = p
        .routing(0)
        .await
        .watch_queue_position(authed(
            GetQueuePositionRequest {
                conversation_id: conversation.into(),
            },
            token,
        ))
        .await
        .expect("watch")
        .into_inner();
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Ok(Some(Ok(pos))) =
            tokio::time::timeout(Duration::from_secs(30), stream.next()).await
        {
            let done = !pos.assigned_agent_id.is_empty();
            seen.push((std::time::Instant::now(), pos));
            if done {
                break;
            }
        }
        seen
    })
}

/// The background dispatch reads the queue from its head a page at a time: a chat
/// that an agent coming online can take is found behind more than a page of chats
/// that nobody online can take.
#[tokio::test]
async fn a_chat_behind_a_long_queue_nobody_can_serve_is_still_assigned() {
    const AHEAD: usize = 520; // more than one page of the dispatch
    let p = Platform::start(1).await;
    let sales = p.team("sales").await;
    let billing = p.team("billing").await;
    for (name, keyword, team) in [("sales", "buy", &sales), ("billing", "refund", &billing)] {
        rule(
            &p,
            RoutingRule {
                name: name.into(),
                condition: Some(RuleCondition {
                    keywords: vec![keyword.into()],
                    ..Default::default()
                }),
                target_team_id: team.id.clone(),
                ..Default::default()
            },
        )
        .await;
    }
    p.agent("bill", 2, &[&billing], &[]).await;
    let inbox = p.inbox().await;
    let ahead: Vec<String> = futures::stream::iter(0..AHEAD)
        .map(|i| {
            let (p, inbox) = (&p, &inbox);
            async move { p.chat(inbox, &format!("buy {i}"), &[]).await.0 }
        })
        .buffered(20)
        .collect()
        .await;
    let (refund, _) = p.chat(&inbox, "refund please", &[]).await;
    assert!(
        p.wait_queue_length(AHEAD + 1, WAIT).await,
        "everyone waits while nobody is online"
    );

    p.presence("bill", Presence::Online).await;
    assert_eq!(
        p.wait_assigned(&refund, WAIT).await.as_deref(),
        Some("bill"),
        "the billing chat is found behind the sales chats"
    );
    for id in ahead.iter().take(3) {
        assert!(p.is_queued(id).await, "sales chats still wait for sales");
    }
    p.stop().await;
}

/// A visitor rates a resolved conversation.
async fn rate(p: &Platform, conversation: &str, visitor: &str, rating: i32) {
    p.conv()
        .await
        .rate_conversation(authed(
            helpdesk_proto::conversation::v1::RateConversationRequest {
                conversation_id: conversation.into(),
                rating,
                comment: String::new(),
            },
            visitor,
        ))
        .await
        .expect("rate");
}

#[tokio::test]
async fn a_teams_satisfaction_counts_each_conversation_once_with_its_latest_rating() {
    let p = Platform::start(1).await;
    let billing = p.team("billing").await;
    p.agent("ana", 3, &[&billing], &[]).await;
    p.presence("ana", Presence::Online).await;
    rule(
        &p,
        RoutingRule {
            name: "billing".into(),
            target_team_id: billing.id.clone(),
            ..Default::default()
        },
    )
    .await;
    let inbox = p.inbox().await;
    let mut chats = Vec::new();
    for text in ["my invoice", "a refund"] {
        let (chat, visitor) = p.chat(&inbox, text, &[]).await;
        assert_eq!(p.wait_assigned(&chat, WAIT).await.as_deref(), Some("ana"));
        let in_team = eventually(WAIT, || async {
            (p.conversation(&chat).await.team_id == billing.id).then_some(())
        })
        .await;
        assert!(in_team.is_some(), "{chat} is billing's");
        p.set_status(&chat, ConversationStatus::Resolved).await;
        chats.push((chat, visitor));
    }
    let team = |ready: fn(&Team) -> bool| {
        let p = &p;
        let id = billing.id.clone();
        async move {
            eventually(WAIT, || async {
                let teams = p
                    .routing(0)
                    .await
                    .list_teams(authed(ListTeamsRequest {}, &p.admin()))
                    .await
                    .ok()?
                    .into_inner()
                    .teams;
                teams.into_iter().find(|t| t.id == id && ready(t))
            })
            .await
        }
    };
    rate(&p, &chats[0].0, &chats[0].1, 5).await;
    rate(&p, &chats[1].0, &chats[1].1, 2).await;
    let rated = team(|t| t.csat_count == 2)
        .await
        .expect("both ratings count");
    assert!((rated.csat_average - 3.5).abs() < 1e-9, "{rated:?}");
    // The first customer changes their mind: the new rating replaces the old one.
    rate(&p, &chats[0].0, &chats[0].1, 3).await;
    let changed = team(|t| (t.csat_average - 3.5).abs() > 1e-9)
        .await
        .expect("the changed rating counts");
    assert_eq!(changed.csat_count, 2);
    assert!((changed.csat_average - 2.5).abs() < 1e-9, "{changed:?}");
    // The supervisor's figures show it too, per team and account-wide.
    let stats = p
        .routing(0)
        .await
        .get_queue_stats(authed(GetQueueStatsRequest::default(), &p.supervisor()))
        .await
        .expect("stats")
        .into_inner();
    for row in stats
        .teams
        .iter()
        .filter(|r| r.team_id.is_empty() || r.team_id == billing.id)
    {
        assert_eq!(row.csat_count, 2, "{row:?}");
        assert!((row.csat_average - 2.5).abs() < 1e-9, "{row:?}");
    }
    assert_eq!(
        stats.teams.iter().filter(|r| r.csat_count == 2).count(),
        2,
        "billing's row and the account's"
    );
    p.stop().await;
}

#[tokio::test]
async fn supervisors_watch_every_agents_presence_and_load_live() {
    let p = Platform::start(1).await;
    let inbox = p.inbox().await;
    p.agent("ana", 2, &[], &[]).await;
    p.agent("li", 2, &[], &[]).await;
    let mut board = p
        .routing(0)
        .await
        .watch_agents(authed(
            WatchAgentsRequest::default(),
            &p.token("sam", Role::Supervisor),
        ))
        .await
        .expect("a supervisor watches the agents")
        .into_inner();
    // Each board as (id, presence, active chats), until one satisfies `done`.
    type Row = (String, i32, i32);
    let mut until = async |done: &dyn Fn(&[Row]) -> bool| {
        tokio::time::timeout(WAIT, async {
            loop {
                let b = board.next().await.expect("open").expect("board");
                let rows: Vec<Row> = b
                    .agents
                    .iter()
                    .map(|a| (a.id.clone(), a.presence, a.active_chats))
                    .collect();
                if done(&rows) {
                    return rows;
                }
            }
        })
        .await
        .expect("the board changed in time")
    };
    let first = until(&|_| true).await;
    assert_eq!(
        first.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["ana", "li"]
    );
    let offline = Presence::Offline as i32;
    assert!(first.iter().all(|r| r.1 == offline), "{first:?}");

    p.presence("ana", Presence::Online).await;
    until(&|rows| rows[0].1 == Presence::Online as i32).await;
    p.chat(&inbox, "Hello?", &[]).await;
    let rows = until(&|rows| rows[0].2 == 1).await;
    assert_eq!(rows[1], ("li".to_string(), offline, 0));

    let refused = p
        .routing(0)
        .await
        .watch_agents(authed(
            WatchAgentsRequest::default(),
            &p.token("ana", Role::Agent),
        ))
        .await
        .expect_err("agents do not watch colleagues");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
}
