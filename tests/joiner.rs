//! The production joiner: takeover between group members, restore from a checkpoint or from
//! the topics, and the outcomes that need state (late postbacks, duplicates, status updates).

use std::time::Duration;

use clickmatch_cli::pipeline::Roles;
use clickmatch_core::clock::now_ms;
use clickmatch_e2e::scenario::{Scenario, Snapshot};
use clickmatch_e2e::TestPipeline;

async fn produce(t: &TestPipeline, scenario: &Scenario, range: std::ops::Range<usize>) {
    let kafka = &t.config.kafka;
    scenario
        .produce(
            &t.config.account,
            &t.publisher(),
            &kafka.clicks_topic,
            &kafka.postbacks_topic,
            range,
            None,
        )
        .await
        .unwrap();
}

async fn single_joiner_run(scenario: &Scenario) -> Snapshot {
    let t = TestPipeline::start_with(&[], 8, Roles::JOIN).await.unwrap();
    produce(&t, scenario, 0..scenario.records.len()).await;
    let snapshot = t
        .wait_rows(scenario.total_rows(), Duration::from_secs(60))
        .await
        .unwrap();
    let snapshot = if snapshot.rows() == scenario.total_rows() {
        t.wait_stable(Duration::from_secs(1), Duration::from_secs(20))
            .await
            .unwrap()
    } else {
        snapshot
    };
    t.cleanup().await.unwrap();
    snapshot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_that_leaves_is_replaced_and_results_equal_a_single_joiner_run() {
    let t = TestPipeline::start_with(&[], 8, Roles::JOIN).await.unwrap();
    let scenario = Scenario::generate(&t.config.account, 3_000, now_ms() - 60_000);
    let half = scenario.records.len() / 2;

    // A second member joins and takes half of the partitions (rebuilding them).
    let second_state = tempfile::tempdir().unwrap();
    let second = t.spawn_joiner(second_state.path()).await.unwrap();
    second
        .wait_joiner_assigned(Duration::from_secs(30))
        .await
        .unwrap();
    produce(&t, &scenario, 0..half).await;
    t.wait_stable(Duration::from_secs(2), Duration::from_secs(60))
        .await
        .unwrap();

    // It leaves; the first member takes its partitions back and restores them.
    second.stop().await.unwrap();
    produce(&t, &scenario, half..scenario.records.len()).await;
    let two_members = t
        .wait_rows(scenario.total_rows(), Duration::from_secs(90))
        .await
        .unwrap();
    let two_members = t
        .wait_stable(Duration::from_secs(1), Duration::from_secs(20))
        .await
        .unwrap_or(two_members);
    two_members.assert_matches(&scenario);
    assert_eq!(two_members.clicks, 3_000);

    let single = single_joiner_run(&scenario).await;
    single.assert_matches(&scenario);
    assert_eq!(two_members, single);
    t.cleanup().await.unwrap();
}

/// Runs the first half, stops the joiner, optionally deletes its state, runs the second half.
async fn run_with_restart(scenario_clicks: u64, delete_state: bool) -> (Snapshot, Scenario) {
    let mut t = TestPipeline::start_with(&[], 4, Roles::JOIN).await.unwrap();
    let scenario = Scenario::generate(&t.config.account, scenario_clicks, now_ms() - 60_000);
    let half = scenario.records.len() / 2;
    produce(&t, &scenario, 0..half).await;
    t.wait_stable(Duration::from_secs(2), Duration::from_secs(60))
        .await
        .unwrap();
    t.stop_services().await.unwrap();
    if delete_state {
        for entry in std::fs::read_dir(t.state_dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                std::fs::remove_dir_all(path).unwrap();
            } else {
                std::fs::remove_file(path).unwrap();
            }
        }
    }
    let state_dir = t.state_dir.path().to_owned();
    let joiner = t.spawn_joiner(&state_dir).await.unwrap();
    produce(&t, &scenario, half..scenario.records.len()).await;
    t.wait_rows(scenario.total_rows(), Duration::from_secs(90))
        .await
        .unwrap();
    let snapshot = t
        .wait_stable(Duration::from_secs(1), Duration::from_secs(20))
        .await
        .unwrap();
    let restore = joiner.gauge("clickmatch_joiner_restore_progress_ratio");
    assert!(restore > 0.0, "restore progress is reported");
    joiner.stop().await.unwrap();
    t.cleanup().await.unwrap();
    (snapshot, scenario)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restore_from_checkpoint_and_from_the_topics_give_the_same_outcomes() {
    let (from_checkpoint, scenario) = run_with_restart(2_000, false).await;
    from_checkpoint.assert_matches(&scenario);
    let (from_topics, scenario) = run_with_restart(2_000, true).await;
    from_topics.assert_matches(&scenario);
    assert_eq!(from_checkpoint.outcomes(), from_topics.outcomes());
}
