//! The Kafka source on librdkafka's mock cluster: an assignment waits for the loop's answer,
//! records arrive in order, and a commit's real answer (accepted or rejected by the broker)
//! comes back as an event through the commit callback.

use std::collections::BTreeMap;
use std::time::Duration;

use clickmatch_config::Config;
use clickmatch_joiner::kafka::KafkaSource;
use clickmatch_joiner::source::{Event, Source, StartAt, Topic};
use clickmatch_kafka::offsets::CommitPositions;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaApiKey;
use rdkafka::types::RDKafkaRespErr;
use rdkafka::ClientConfig;
use tokio::sync::mpsc;

async fn next(events: &mut mpsc::Receiver<Event>) -> Event {
    tokio::time::timeout(Duration::from_secs(60), events.recv())
        .await
        .expect("an event within 60 s")
        .expect("the source is running")
}

/// The next event that is not a chunk of records.
async fn next_control(events: &mut mpsc::Receiver<Event>) -> Event {
    loop {
        match next(events).await {
            Event::Records(_) => continue,
            other => return other,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assignments_records_and_real_commit_answers_arrive_as_events() {
    let cluster = MockCluster::new(1).unwrap();
    let mut kafka = Config::demo(&BTreeMap::new()).unwrap().kafka;
    kafka.bootstrap_servers = cluster.bootstrap_servers();
    kafka.group_id = "source-test".into();
    for topic in [&kafka.clicks_topic, &kafka.postbacks_topic] {
        cluster.create_topic(topic, 1, 1).unwrap();
    }
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", cluster.bootstrap_servers())
        .create()
        .unwrap();
    for n in 0..3 {
        let payload = format!("click {n}");
        producer
            .send(
                BaseRecord::to(&kafka.clicks_topic)
                    .key("k")
                    .payload(&payload),
            )
            .map_err(|(e, _)| e)
            .unwrap();
    }
    producer.flush(Duration::from_secs(5)).unwrap();

    let (source, mut events) = KafkaSource::start(&kafka).unwrap();
    let Event::Assign { partitions, reply } = next_control(&mut events).await else {
        panic!("an assignment first");
    };
    assert_eq!(partitions.len(), 2, "{partitions:?}");
    let starts = partitions
        .iter()
        .map(|&p| (p, StartAt::Offset(1)))
        .collect();
    reply.send(starts).unwrap();

    // Read from where the answer said: offsets 1 and 2.
    let mut offsets = Vec::new();
    while offsets.len() < 2 {
        if let Event::Records(records) = next(&mut events).await {
            for record in records {
                assert_eq!(record.topic, Topic::Clicks);
                offsets.push((record.offset, String::from_utf8(record.payload).unwrap()));
            }
        }
    }
    assert_eq!(
        offsets,
        vec![(1, "click 1".to_string()), (2, "click 2".to_string())]
    );

    let mut positions = CommitPositions::default();
    positions.set(&kafka.clicks_topic, 0, 3);
    source.commit(&positions).unwrap();
    let Event::Committed {
        positions: answered,
        result,
    } = next_control(&mut events).await
    else {
        panic!("the commit's answer");
    };
    assert_eq!((answered, result.is_ok()), (positions.clone(), true));
    assert_eq!(
        source
            .committed(&[(Topic::Clicks, 0)])
            .unwrap()
            .get(&(Topic::Clicks, 0)),
        Some(&3)
    );

    // A commit the broker rejects is answered as rejected, not taken for done.
    cluster.request_errors(
        RDKafkaApiKey::OffsetCommit,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_OFFSET_METADATA_TOO_LARGE],
    );
    positions.set(&kafka.clicks_topic, 0, 2);
    source.commit(&positions).unwrap();
    let Event::Committed { result, .. } = next_control(&mut events).await else {
        panic!("the rejected commit's answer");
    };
    assert!(result.is_err(), "{result:?}");

    tokio::task::spawn_blocking(move || source.close(events))
        .await
        .unwrap();
}
