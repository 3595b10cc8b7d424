use clickmatch_clickhouse::*;
use std::time::Instant;
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = std::path::Path::new("/tmp/cm_probe_stop");
    let _ = std::fs::remove_dir_all(dir);
    let mut server = LocalServer::start(dir, 18300, 18301).unwrap();
    let s = ClickHouseSettings::new(server.url(), "probe");
    migrate(&s).await.unwrap();
    let mode = std::env::args().nth(1).unwrap_or_default();
    let client = s.client();
    if mode.contains('f') {
        let v: Vec<u32> = client
            .query("SELECT toUInt32(1)")
            .fetch_all()
            .await
            .unwrap();
        println!("{v:?}");
    }
    if mode.contains('j') {
        for _ in 0..5 {
            let q = || client.query("SELECT toUInt32(1)").fetch_one::<u32>();
            let (a, b, c) = tokio::join!(q(), q(), q());
            println!("{:?}", (a.unwrap(), b.unwrap(), c.unwrap()));
            for _ in 0..5 {
                client
                    .query("SELECT toUInt32(1)")
                    .fetch_one::<u32>()
                    .await
                    .unwrap();
            }
        }
    }
    let sink = ClickHouseSink::new(&s).unwrap();
    if mode.contains('i') {
        let c = clickmatch_core::records::ClickRecord { v: 1, click_id: "x".into(), time_ms: 1, campaign_id: "".into(), offer_id: "".into(), source: "".into(), subs: vec![], ip: "".into(), user_agent: "".into(), country: "".into(), is_test: false, foreign: false };
        sink.write(&[c.clone(), c], &[]).await.unwrap();
    }
    if !mode.contains('s') { drop(sink); }
    if mode.contains('o') {
        let v: u32 = client
            .query("SELECT toUInt32(1)")
            .fetch_one()
            .await
            .unwrap();
        println!("{v:?}");
    }
    if !mode.contains('k') {
        drop(client);
    }
    let t = Instant::now();
    tokio::task::spawn_blocking(move || server.stop().unwrap())
        .await
        .unwrap();
    println!("stop took {:?}", t.elapsed());
}
