"""Distributed mode: many crawler and worker processes on any machines, sharing one Redis and one
Elasticsearch/OpenSearch index (README "Scaling out").

- cluster/frontier.py: the crawl frontier on Redis (a run shared by N crawler processes: one queue, a
  duplicate filter, leases that come back when a process dies);
- cluster/crawl.py: the Scrapy glue (a scrapy-redis scheduler on that frontier, the crawl context, the
  pipelines that hand crawled listings to the workers over a Redis stream);
- cluster/streams.py: the listing and event streams (consumer groups, trimming, dead letters);
- cluster/worker.py: `tiswatch worker`: check and index listings from the stream; relay events into
  the data directory's event log; publish the licence registry to the other machines;
- cluster/registry.py: the licence registry as a snapshot in Redis;
- cluster/cli.py: `tiswatch worker`, `tiswatch cluster ...`.
"""
