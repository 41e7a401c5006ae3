// A config that sets every key rrts reads (src/config/keys.ts) to a value the section readers accept: the key
// table tests read it through the readers, the schema tests validate it.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeConfig } from './tmp.js';

export const FULL_CONFIG_TEXT = `version: '3'
include: []
server:
  command: php worker.php
  user: ''
  group: ''
  env: {A: '1'}
  relay: pipes
  on_init:
    command: php init.php
    exec_timeout: 10s
    env: {B: '2'}
    user: ''
    exit_on_error: false
  fork:
    enabled: false
    preload: preload.php
    spares: 1
http:
  address: 127.0.0.1:8080
  internal_error_code: 500
  access_logs: false
  max_request_size: 10
  raw_body: false
  middleware: [headers, static]
  trusted_subnets: [10.0.0.0/8]
  uploads: {dir: ., forbid: [.php], allow: []}
  pool:
    debug: false
    command: php worker.php
    num_workers: 2
    max_jobs: 0
    max_queue_size: 0
    allocate_timeout: 60s
    reset_timeout: 60s
    stream_timeout: 60s
    destroy_timeout: 60s
    supervisor: {watch_tick: 1s, ttl: 0s, idle_ttl: 0s, max_worker_memory: 128, exec_ttl: 0s}
    dynamic_allocator: {max_workers: 4, spawn_rate: 2, idle_timeout: 10s, scale_on_wait: 5ms}
  ssl:
    address: 127.0.0.1:8443
    redirect: false
    cert: cert.pem
    key: key.pem
    root_ca: ca.pem
    client_auth_type: no_client_cert
  http2: {h2c: false, max_concurrent_streams: 128}
  front: {processes: 1}
  no_free_workers_code: 503
  overload_retry_after: 2s
  exec_ttl_code: 504
  read_header_timeout: 1m
  read_timeout: 1m
  headers:
    request: {x-a: a}
    response: {x-b: b}
    cors:
      allowed_origin: '*'
      allowed_origin_regex: '^https://a'
      allowed_headers: '*'
      allowed_methods: GET
      allow_credentials: false
      exposed_headers: ''
      max_age: 60
      options_success_status: 204
      debug: false
  static:
    dir: .
    forbid: [.php]
    allow: []
    calculate_etag: true
    weak: false
    request: {x-c: c}
    response: {x-d: d}
rpc:
  listen: tcp://127.0.0.1:6001
logs:
  mode: production
  level: info
  encoding: json
  line_ending: "\\n"
  output: [stderr]
  erroroutput: [stderr]
  channels:
    http:
      mode: production
      level: info
      encoding: json
      line_ending: "\\n"
      output: [stderr]
      err_output: [stderr]
      erroroutput: [stderr]
status:
  address: 127.0.0.1:2114
  unavailable_status_code: 503
  check_timeout: 60
metrics:
  address: 127.0.0.1:2112
  collect:
    hits:
      type: summary
      help: hits
      labels: [route]
      buckets: [0.1, 1]
      objectives: {0.5: 0.05}
      namespace: app
      subsystem: web
amqp:
  addr: amqp://guest:guest@127.0.0.1:5672/
  tls: {key: client.key, cert: client.crt, root_ca: ca.crt, client_auth_type: no_client_certs}
beanstalk:
  addr: tcp://127.0.0.1:11300
  timeout: 30s
nats:
  addr: nats://127.0.0.1:4222
endure:
  grace_period: 30s
  print_graph: false
  log_level: error
  watchdog_sec: 0
jobs:
  pool: {num_workers: 2, command: php consumer.php, supervisor: {watch_tick: 1s, ttl: 0s, idle_ttl: 0s, max_worker_memory: 128, exec_ttl: 0s}, dynamic_allocator: {max_workers: 2, spawn_rate: 1, idle_timeout: 30s, scale_on_wait: 5ms}}
  timeout: 60
  pipeline_size: 1000
  options: {parallelism: 2}
  pipelines:
    main: {driver: memory, config: {priority: 10, prefetch: 100}}
  consume: [main]
informer: {}
resetter: {}
lock: {}
`;

/** FULL_CONFIG_TEXT in a fresh folder with the certificate files it names. */
export function writeFullConfig(): { file: string; dir: string } {
  const written = writeConfig(FULL_CONFIG_TEXT, 'rr.yaml');
  for (const name of ['cert.pem', 'key.pem', 'ca.pem']) writeFileSync(join(written.dir, name), 'x');
  return written;
}
