# Sends Mastodon-shaped StatsD metrics with statsd-ruby, the client library Mastodon's nsa instrumentation
# uses (Debian package ruby-statsd), until killed or for at most the given number of seconds.
#   ruby mastodon_client.rb HOST PORT SECONDS
require "statsd"

host, port, seconds = ARGV[0], Integer(ARGV[1]), Float(ARGV[2] || "60")
statsd = Statsd.new(host, port)
statsd.namespace = "Mastodon.production"

controllers = [
  ["Api::V1::Timelines::HomeController", "show", "json"],
  ["Api::V1::StatusesController", "create", "json"],
  ["HomeController", "index", "html"],
]
tables = %w[statuses accounts follows]
workers = ["ActivityPub::DeliveryWorker", "LinkCrawlWorker", "PushUpdateWorker"]
deadline = Time.now + seconds
i = 0
while Time.now < deadline
  controllers.each do |controller, action, format|
    key = "web.#{controller}.#{action}.#{format}"
    statsd.timing("#{key}.total_duration", 20 + rand(200))
    statsd.timing("#{key}.db_time", 5 + rand(50))
    statsd.timing("#{key}.view_time", 1 + rand(30))
    statsd.increment("#{key}.status.#{i % 20 == 0 ? 500 : 200}")
  end
  tables.each do |table|
    %w[select insert].each { |op| statsd.timing("db.tables.#{table}.queries.#{op}.duration", rand * 3) }
  end
  %w[read_hit read_miss write exist?].each { |op| statsd.timing("cache.#{op}.duration", rand) }
  workers.each do |worker|
    statsd.timing("sidekiq.#{worker}.processing_time", 50 + rand(500))
    statsd.increment("sidekiq.#{worker}.#{i % 10 == 0 ? "failure" : "success"}")
  end
  %w[default push pull].each do |queue|
    statsd.gauge("sidekiq.queues.#{queue}.enqueued", rand(100))
    statsd.gauge("sidekiq.queues.#{queue}.latency", rand * 10)
  end
  %w[enqueued retry_size scheduled_size dead_size processes_size workers_size processed failed].each do |stat|
    statsd.gauge("sidekiq.#{stat}", rand(1000))
  end
  i += 1
  sleep 0.05
end
