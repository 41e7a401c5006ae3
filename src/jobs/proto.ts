// The jobs.v1 protobuf messages of RoadRunner's jobs RPC (api proto/jobs/v1/jobs.proto, docs/jobs.md §3.2), built
// at start-up by protobufjs from the schema text below (written from the reference, no generated code), and the
// plain shapes the plugin works with after decoding.
import protobuf from 'protobufjs';
import type { PipelineState } from './driver.js';

const JOBS_V1_PROTO = `
syntax = "proto3";
package jobs.v1;

message PushRequest      { Job job = 1; }
message PushBatchRequest { repeated Job jobs = 1; }

message Job {
  string job = 1;
  string id = 2;
  bytes payload = 3;
  map<string, HeaderValue> headers = 4;
  Options options = 5;
}

message Options {
  int64 priority = 1;
  string pipeline = 2;
  int64 delay = 3;
  bool auto_ack = 6;
  string topic = 7;
  string metadata = 8;
  int64 offset = 9;
  int32 partition = 10;
}

message HeaderValue    { repeated string value = 1; }
message DeclareRequest { map<string, string> pipeline = 1; }
message Stats          { repeated Stat stats = 1; }
message Stat {
  string pipeline = 1;
  string driver = 2;
  string queue = 3;
  int64 active = 4;
  int64 delayed = 5;
  int64 reserved = 6;
  bool ready = 7;
  uint64 priority = 8;
}
message Pipelines { repeated string pipelines = 1; }
message Empty {}
`;

// keepCase: field names as in the .proto (auto_ack), which is also how Go's JSON tags spell them
const root = protobuf.parse(JOBS_V1_PROTO, { keepCase: true }).root;

export const JobsProto = {
  PushRequest: root.lookupType('jobs.v1.PushRequest'),
  PushBatchRequest: root.lookupType('jobs.v1.PushBatchRequest'),
  DeclareRequest: root.lookupType('jobs.v1.DeclareRequest'),
  Stats: root.lookupType('jobs.v1.Stats'),
  Pipelines: root.lookupType('jobs.v1.Pipelines'),
  Empty: root.lookupType('jobs.v1.Empty'),
} as const;

/** jobs.v1.Job after decoding (toObject with defaults: absent strings are '', absent numbers 0). */
export interface ProtoJob {
  job: string;
  id: string;
  payload: Buffer;
  headers: Record<string, { value: string[] }>;
  options: ProtoOptions | null;
}

export interface ProtoOptions {
  priority: number;
  pipeline: string;
  delay: number;
  auto_ack: boolean;
}

export interface PushRequest {
  job: ProtoJob | null;
}

export interface PushBatchRequest {
  jobs: ProtoJob[];
}

export interface DeclareRequest {
  pipeline: Record<string, string>;
}

export interface Pipelines {
  pipelines: string[];
}

/** jobs.v1.Stat: a driver's PipelineState without its error text. */
export type ProtoStat = Omit<PipelineState, 'errorMessage'>;
