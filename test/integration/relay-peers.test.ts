// Exec mode over a unix or tcp relay: a local process that learns a new worker's pid, connects first and answers
// that pid is refused (the kernel names who connected), and the real worker still takes its place, also when php
// runs under `sh -c` (a descendant of the spawned process).
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { stringify } from 'yaml';
import { alive, FIXTURE, freePort, killQuietly, ROOT, RrtsInstance, startRrts } from './harness.js';
import { request } from './client.js';
import { RelayImpostor } from '../support/relay-impostor.js';

const RELAYS = ['unix', 'tcp'] as const;
const COMMANDS = [
  { name: 'php', command: `php ${FIXTURE}`, wrapped: false },
  // "; exit $?" keeps sh from exec'ing php in place: php is the spawned process's child
  { name: 'sh -c wrapper', command: ['sh', '-c', `php ${FIXTURE}; exit $?`], wrapped: true },
];

describe('exec mode: who may answer on a socket relay', { timeout: 120_000 }, () => {
  for (const relay of RELAYS) {
    for (const { name, command, wrapped } of COMMANDS) {
      test(`${relay} relay, ${name}: an impostor answering the worker's pid is refused, the worker serves`, async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-peers-'));
        const pidFile = path.join(dir, 'worker.pid');
        const relayValue = relay === 'unix' ? `unix://${path.join(dir, 'relay.sock')}` : `tcp://127.0.0.1:${await freePort()}`;
        const goFile = path.join(dir, 'go');
        const impostor = RelayImpostor.start(relayValue, pidFile);
        // The worker writes its pid file, then waits for goFile: the impostor connects first, every time.
        const starting = startRrts({
          workers: 1,
          config: { server: { command, relay: relayValue, env: { FIXTURE_PID_FILE: pidFile, FIXTURE_BOOT_WAIT_FOR: goFile } } },
        });
        starting.catch(() => {}); // awaited below
        let rrts: RrtsInstance | null = null;
        try {
          try {
            await impostor.waitFor('closed');
          } finally {
            fs.writeFileSync(goFile, '');
          }
          assert.ok(impostor.has('answered'), `the impostor answered the handshake: ${JSON.stringify(impostor.events)}`);
          rrts = await starting;
          const workerPid = readPid(pidFile);
          if (wrapped) {
            const [spawned] = rrts.workerPids();
            assert.notEqual(spawned, workerPid, 'php runs under sh, not in its place');
          }

          assert.ok(!impostor.has('frame'), `the impostor never gets a request: ${JSON.stringify(impostor.events)}`);

          const reply = await request(`${rrts.url}/pid`, { headers: { authorization: 'Bearer secret' }, timeoutMs: 10_000 });
          assert.equal(reply.status, 200);
          assert.equal(reply.body.toString(), String(workerPid), 'the real worker answers');

          const refusals = rrts.logs().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('worker connection refused'));
          assert.equal(refusals.length, 1, rrts.stderr.slice(-3000));
          const [refusal] = refusals;
          assert.equal(refusal!.level, 'warn');
          assert.equal(refusal!.pid, workerPid, 'the log names the claimed pid');
          assert.equal(refusal!.relay, relayValue, 'the log names the relay');
          if (relay === 'unix') {
            assert.equal(refusal!.peer_pid, impostor.pid, 'the log names who really connected');
            assert.match(String(refusal!.msg), new RegExp(`answered pid ${workerPid}, but process ${impostor.pid} connected`));
          } else {
            assert.match(String(refusal!.msg), new RegExp(`answered pid ${workerPid}, but that process does not hold the connecting socket`));
          }
        } finally {
          impostor.kill();
          const workerPid = readPid(pidFile);
          rrts ??= await starting.catch(() => null);
          await rrts?.stop();
          if (workerPid > 0 && alive(workerPid)) killQuietly(workerPid); // sh's child, if sh went first
          fs.rmSync(dir, { recursive: true, force: true });
        }
      });
    }
  }

  describe('without the native addon', () => {
    // A copy of the built package without build/Release: rrts finds no addon there.
    let copy: string;
    before(() => {
      copy = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-noaddon-'));
      fs.cpSync(path.join(ROOT, 'dist', 'src'), path.join(copy, 'dist', 'src'), { recursive: true });
      fs.cpSync(path.join(ROOT, 'bin'), path.join(copy, 'bin'), { recursive: true });
      fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(copy, 'package.json'));
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(copy, 'node_modules'));
    });
    after(() => fs.rmSync(copy, { recursive: true, force: true }));

    test('a unix relay is refused at start, naming server.relay and why', async () => {
      const rrts = await serveFrom(copy, 'unix://relay.sock');
      try {
        const exit = await Promise.race([rrts.exited, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
        assert.equal(exit?.code, 1, rrts.stderr.slice(-2000));
        assert.match(
          rrts.stderr,
          /key 'server\.relay': rrts cannot check which process connects to the relay unix:\/\/relay\.sock here: reading SO_PEERCRED needs the native addon, and build\/Release\/rrts_native\.node is missing/,
        );
        assert.match(rrts.stderr, /Use server\.relay: pipes \(the default\) instead/);
        assert.doesNotMatch(rrts.stderr, /\n\s+at /, 'no stack trace');
      } finally {
        await rrts.stop();
      }
    });

    test('a tcp relay needs no addon: it is checked through /proc and serves', async () => {
      const rrts = await serveFrom(copy, `tcp://127.0.0.1:${await freePort()}`);
      try {
        await rrts.waitFor(() => rrts.stdout.includes('server started') || rrts.proc.exitCode !== null, 'rrts to start', 20_000);
        const reply = await request(`${rrts.url}/pid`, { timeoutMs: 10_000 });
        assert.equal(reply.status, 200, rrts.stderr.slice(-2000));
      } finally {
        await rrts.stop();
      }
    });
  });
});

/** `rrts serve` run from the package copy at `root`, one exec worker over `relay`. */
async function serveFrom(root: string, relay: string): Promise<RrtsInstance> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-it-'));
  const port = await freePort();
  const config = {
    version: '3',
    server: { command: `php ${FIXTURE}`, relay },
    http: { address: `127.0.0.1:${port}`, pool: { num_workers: 1, allocate_timeout: '10s' } },
    logs: { mode: 'production', level: 'info' },
  };
  fs.writeFileSync(path.join(dir, '.rr.yaml'), stringify(config));
  const proc = spawn(process.execPath, [path.join(root, 'bin', 'rrts'), 'serve', '-c', path.join(dir, '.rr.yaml')], {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new RrtsInstance(proc, dir, port);
}

function readPid(file: string): number {
  try {
    return Number(fs.readFileSync(file, 'utf8'));
  } catch {
    return 0;
  }
}
