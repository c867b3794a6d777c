//! Shared inputs for statsd-proxy's benchmarks: corpora of realistic StatsD lines.
//!
//! The Mastodon corpus follows what Mastodon's `nsa` instrumentation sends (DESIGN §6): controller
//! timings and status counters, per-table SQL timings, cache operations, Sidekiq workers and queues,
//! including the quirks seen in real traffic. The DogStatsD corpus is typical tagged application traffic.

#![forbid(unsafe_code)]

/// Mastodon-style lines, one metric each, as Mastodon sends them (one per datagram), in the default
/// namespace.
pub fn mastodon_lines() -> Vec<String> {
    mastodon_lines_in("Mastodon.production")
}

/// Every key shape of DESIGN §6 under the `STATSD_NAMESPACE` `ns` (which may have any number of
/// segments).
pub fn mastodon_lines_in(ns: &str) -> Vec<String> {
    let controllers = [
        ("Api.V1.TimelinesController", "home", "json"),
        ("Api.V1.Timelines.PublicController", "show", "json"),
        ("Api.V1.StatusesController", "create", "json"),
        ("Api.V1.NotificationsController", "index", "json"),
        ("HomeController", "index", "html"),
        ("ActivityPub.InboxesController", "create", "json"),
        ("WellKnown.WebfingerController", "show", "json"),
    ];
    let mut lines = Vec::new();
    for (i, (controller, action, format)) in controllers.iter().enumerate() {
        let t = 12.5 + i as f64 * 3.25;
        lines.push(format!(
            "{ns}.web.{controller}.{action}.{format}.total_duration:{t}|ms"
        ));
        lines.push(format!(
            "{ns}.web.{controller}.{action}.{format}.db_time:{}|ms",
            t / 4.0
        ));
        lines.push(format!(
            "{ns}.web.{controller}.{action}.{format}.view_time:1|ms"
        ));
        lines.push(format!(
            "{ns}.web.{controller}.{action}.{format}.status.200:1|c"
        ));
    }
    lines.push(format!("{ns}.web.HomeController.index.html.status.:1|c"));
    for table in [
        "statuses",
        "accounts",
        "follows",
        "(SELECT",
        "media_attachments",
    ] {
        for op in ["select", "insert", "update", "delete"] {
            lines.push(format!(
                "{ns}.db.tables.{table}.queries.{op}.duration:0.41|ms"
            ));
        }
    }
    for op in [
        "read_hit",
        "read_miss",
        "fetch_hit",
        "generate",
        "write",
        "delete",
        "exist?",
        "read_multi",
    ] {
        lines.push(format!("{ns}.cache.{op}.duration:4.0e-05|ms"));
    }
    for worker in [
        "ActivityPub.DeliveryWorker",
        "ActivityPub..DeliveryWorker",
        "LinkCrawlWorker",
        "PushUpdateWorker",
        // ActionMailer deliveries run as this four-part worker; older nsa writes `..` for `::`.
        "ActiveJob.QueueAdapters.SidekiqAdapter.JobWrapper",
        "ActiveJob..QueueAdapters..SidekiqAdapter..JobWrapper",
        "Admin..AccountDeletionWorker",
        "Scheduler.Accounts.Maintenance.Deep.CleanupScheduler",
    ] {
        lines.push(format!("{ns}.sidekiq.{worker}.processing_time:80|ms"));
        lines.push(format!("{ns}.sidekiq.{worker}.success:1|c"));
    }
    lines.push(format!("{ns}.sidekiq.LinkCrawlWorker.failure:1|c"));
    for gauge in [
        "dead_size",
        "enqueued",
        "failed",
        "processed",
        "processes_size",
        "retry_size",
        "scheduled_size",
        "workers_size",
    ] {
        lines.push(format!("{ns}.sidekiq.{gauge}:17|g"));
    }
    for queue in ["default", "push", "pull", "mailers", "scheduler", "ingress"] {
        lines.push(format!("{ns}.sidekiq.queues.{queue}.enqueued:3|g"));
        lines.push(format!("{ns}.sidekiq.queues.{queue}.latency:0.25|g"));
    }
    lines
}

/// DogStatsD-tagged lines: counters, gauges and sampled timers with 2–5 tags.
pub fn dogstatsd_lines() -> Vec<String> {
    let mut lines = Vec::new();
    for (i, route) in [
        "/home",
        "/api/v1/timelines/home",
        "/api/v1/statuses",
        "/inbox",
    ]
    .iter()
    .enumerate()
    {
        lines.push(format!("http.request.duration:{}|ms|@0.5|#env:prod,service:web,route:{route},method:GET,status:200", 10 + i));
        lines.push(format!(
            "http.requests:1|c|#env:prod,service:web,route:{route}"
        ));
        lines.push(format!(
            "http.response.size:{}|h|#env:prod,route:{route}",
            512 * (i + 1)
        ));
    }
    lines.push("queue.depth:42|g|#env:prod,queue:default".into());
    lines.push("worker.busy:3|g|#env:prod,pool:sidekiq,host:web-01".into());
    lines.push("cache.hit:1|c|@0.1|#env:prod,cache:redis".into());
    lines
}

/// The StatsD names of the Mastodon corpus, each with the mapping type of its sample.
pub fn mastodon_names() -> Vec<(String, statsd_mapping::MetricType)> {
    use statsd_mapping::MetricType;
    mastodon_lines()
        .iter()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            let ty = match rest.rsplit('|').next()? {
                "c" => MetricType::Counter,
                "g" => MetricType::Gauge,
                _ => MetricType::Observer,
            };
            Some((name.to_string(), ty))
        })
        .collect()
}

/// A glob mapping with `rules` rules: the Mastodon globs that fixed-shape names allow (database,
/// cache, Sidekiq), then filler rules for other applications, which Mastodon names never match but the
/// matcher must still rule out.
pub fn glob_mapping(rules: usize) -> String {
    let mastodon = [
        (
            "Mastodon.production.db.tables.*.queries.*.duration",
            "mastodon_db_operation",
            "table: \"$1\"\n      operation: \"$2\"",
        ),
        (
            "Mastodon.production.cache.*.duration",
            "mastodon_cache_duration",
            "operation: \"$1\"",
        ),
        (
            "Mastodon.production.sidekiq.*.processing_time",
            "mastodon_sidekiq_worker_processing_time",
            "worker: \"$1\"",
        ),
        (
            "Mastodon.production.sidekiq.*.success",
            "mastodon_sidekiq_worker_success_total",
            "worker: \"$1\"",
        ),
        (
            "Mastodon.production.sidekiq.*.failure",
            "mastodon_sidekiq_worker_failure_total",
            "worker: \"$1\"",
        ),
        (
            "Mastodon.production.sidekiq.queues.*.enqueued",
            "mastodon_sidekiq_queue_enqueued",
            "queue: \"$1\"",
        ),
        (
            "Mastodon.production.sidekiq.queues.*.latency",
            "mastodon_sidekiq_queue_latency",
            "queue: \"$1\"",
        ),
        (
            "Mastodon.production.sidekiq.*",
            "mastodon_sidekiq_$1",
            "mastodon: sidekiq",
        ),
    ];
    let mut yaml = String::from("mappings:\n");
    for (i, (m, name, labels)) in mastodon.iter().enumerate().take(rules) {
        let _ = i;
        yaml += &format!("  - match: \"{m}\"\n    name: \"{name}\"\n    labels:\n      {labels}\n");
    }
    for i in mastodon.len()..rules {
        yaml += &format!(
            "  - match: \"app{i}.*.requests.*\"\n    name: \"app{i}_requests\"\n    labels:\n      endpoint: \"$1\"\n      code: \"$2\"\n"
        );
    }
    yaml
}

/// Latency-like timer values (seconds): a deterministic spread over three orders of magnitude.
pub fn timer_values(n: u64) -> Vec<f64> {
    (0..n)
        .map(|i| 0.001 * (1.0 + ((i * 7919) % 1000) as f64))
        .collect()
}

/// A summary (default objectives and window) in steady state: `values` observed in each of its five
/// age buckets, so every stream differs and an observation is merged into all five (as in
/// statsd_exporter). Returns it with the time to observe at next (within the last age bucket).
pub fn steady_summary(values: &[f64]) -> (statsd_store::Summary, std::time::Instant) {
    let options = statsd_store::SummaryOptions::default();
    let step = options.max_age / options.age_buckets;
    let now = std::time::Instant::now();
    let mut s = statsd_store::Summary::new(std::sync::Arc::new(options), now);
    let mut at = now;
    for _ in 0..5 {
        for &v in values {
            s.observe(v, 1, at);
        }
        at += step;
    }
    (s, at - step)
}
