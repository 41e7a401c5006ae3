// H1Response's header fields (src/http/h1/response.ts) against node:http's ServerResponse, the API it stands in
// for: the same calls on both, each served on loopback, must give the same header lines in the same order and the
// same answers from getHeader/getHeaders/getHeaderNames/hasHeader.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { H1Front } from '../../../src/http/h1/connection.js';

/** The part of both response classes a case uses. */
interface Fields {
  setHeader(name: string, value: string | number | readonly string[]): unknown;
  getHeader(name: string): unknown;
  getHeaders(): Record<string, unknown>;
  getHeaderNames(): string[];
  hasHeader(name: string): boolean;
  removeHeader(name: string): void;
  end(body: string): unknown;
}

interface Case {
  name: string;
  act(res: Fields): void;
}

const CASES: Case[] = [
  {
    name: 'more headers than the array is made for, one of them with several values',
    act(res) {
      for (let i = 0; i < 7; i++) res.setHeader(`X-H${i}`, `v${i}`);
      res.setHeader('Set-Cookie', ['a=1', 'b=2']);
    },
  },
  {
    name: 'a name set again in another case keeps its place and takes the new spelling',
    act(res) {
      res.setHeader('Content-Type', 'text/plain');
      res.setHeader('X-A', '1');
      res.setHeader('content-TYPE', 'text/html');
    },
  },
  {
    name: 'a removed name leaves; set again it goes last',
    act(res) {
      res.setHeader('X-A', '1');
      res.setHeader('X-B', '2');
      res.setHeader('X-C', '3');
      res.removeHeader('x-a');
      res.removeHeader('X-Missing');
      res.setHeader('X-A', '4');
      res.removeHeader('X-C');
    },
  },
  {
    name: 'array-index names come first, ascending, as in a dictionary',
    act(res) {
      res.setHeader('X-First', '1');
      res.setHeader('20', 'b');
      res.setHeader('3', 'a');
      res.setHeader('4x', 'c');
      res.setHeader('020', 'd');
    },
  },
];

/** What a case's handler saw, and the header lines it sent (less the ones each server adds by itself). */
interface Seen {
  get: unknown[];
  headers: Record<string, unknown>;
  names: string[];
  has: boolean[];
  lines: string[];
}

const PROBES = ['content-type', 'X-A', 'x-h6', 'SET-COOKIE', '3', '20', 'x-c'];

function run(testCase: Case, res: Fields, seen: Partial<Seen>): void {
  testCase.act(res);
  res.setHeader('Content-Length', 2);
  seen.get = PROBES.map((p) => res.getHeader(p));
  seen.headers = { ...res.getHeaders() };
  seen.names = res.getHeaderNames();
  seen.has = PROBES.map((p) => res.hasHeader(p));
  res.end('ok');
}

/** The header lines of one answer to a GET, without Date, Connection and Keep-Alive. */
async function headLines(port: number, path: string): Promise<string[]> {
  const socket = net.connect(port, '127.0.0.1');
  try {
    socket.write(`GET ${path} HTTP/1.1\r\nHost: a\r\n\r\n`);
    let text = '';
    for await (const chunk of socket) {
      text += (chunk as Buffer).toString('latin1');
      if (text.includes('\r\n\r\nok')) break;
    }
    return text
      .slice(0, text.indexOf('\r\n\r\n'))
      .split('\r\n')
      .slice(1)
      .filter((line) => !/^(date|connection|keep-alive):/i.test(line));
  } finally {
    socket.destroy();
  }
}

describe("H1Response's header fields, as node:http's ServerResponse keeps them", { timeout: 30_000 }, () => {
  const seenNode = new Map<string, Partial<Seen>>();
  const seenRrts = new Map<string, Partial<Seen>>();
  const caseOf = (url: string | undefined): Case => CASES[Number((url ?? '/0').slice(1))]!;
  let nodeServer: http.Server;
  let rrtsServer: net.Server;
  let front: H1Front;

  before(async () => {
    nodeServer = http.createServer((req, res) => {
      const c = caseOf(req.url);
      const seen: Partial<Seen> = {};
      seenNode.set(c.name, seen);
      run(c, res, seen);
    });
    front = new H1Front(
      (req, res) => {
        const c = caseOf(req.url);
        const seen: Partial<Seen> = {};
        seenRrts.set(c.name, seen);
        run(c, res, seen);
      },
      { tls: false, headersTimeoutMs: 30_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 30_000, maxHeaderBytes: 1 << 20, log: pino({ level: 'silent' }) },
    );
    rrtsServer = net.createServer({ allowHalfOpen: true }, (socket) => front.serve(socket));
    nodeServer.listen(0, '127.0.0.1');
    rrtsServer.listen(0, '127.0.0.1');
    await Promise.all([once(nodeServer, 'listening'), once(rrtsServer, 'listening')]);
  });

  after(() => {
    front.closeAll();
    rrtsServer.close();
    nodeServer.closeAllConnections();
    nodeServer.close();
  });

  CASES.forEach((testCase, index) => {
    it(testCase.name, async () => {
      const nodeLines = await headLines((nodeServer.address() as AddressInfo).port, `/${index}`);
      const rrtsLines = await headLines((rrtsServer.address() as AddressInfo).port, `/${index}`);
      assert.deepEqual(rrtsLines, nodeLines);
      const ours = seenRrts.get(testCase.name)!;
      const theirs = seenNode.get(testCase.name)!;
      assert.deepEqual(ours.get, theirs.get);
      assert.deepEqual(ours.headers, theirs.headers);
      assert.deepEqual(ours.names, theirs.names);
      assert.deepEqual(ours.has, theirs.has);
    });
  });
});
