// `rrts workers` rendering: go-humanize's formats (bytes, commas, relative time) and a table that fits 80 columns.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { comma, humanBytes, relativeTime, renderPlugin, renderTable } from '../../src/cli/workers.js';
import type { WorkerState } from '../../src/rpc/services.js';

const NOW = 1_800_000_000_000;

function state(over: Partial<WorkerState>): WorkerState {
  return { pid: 1, status: 1, numExecs: 0, created: NOW * 1e6, memoryUsage: 0, CPUPercent: 0, command: '', statusStr: 'ready', uss: 0, pss: 0, ...over };
}

describe('workers table formats', () => {
  it('humanBytes is go-humanize Bytes (SI)', () => {
    const cases: Array<[number, string]> = [
      [0, '0 B'],
      [9, '9 B'],
      [10, '10 B'],
      [999, '999 B'],
      [1000, '1.0 kB'],
      [1500, '1.5 kB'],
      [45_000_000, '45 MB'],
      [34_567_890, '35 MB'],
      [9_940_000, '9.9 MB'],
      [9_950_000, '10 MB'],
      [1_234_567_890, '1.2 GB'],
    ];
    for (const [n, text] of cases) assert.equal(humanBytes(n), text, String(n));
  });

  it('comma', () => {
    assert.equal(comma(0), '0');
    assert.equal(comma(999), '999');
    assert.equal(comma(1234), '1,234');
    assert.equal(comma(1234567), '1,234,567');
  });

  it('relativeTime is go-humanize Time', () => {
    const s = 1000;
    const cases: Array<[number, string]> = [
      [0, 'now'],
      [999, 'now'],
      [1 * s, '1 second ago'],
      [30 * s, '30 seconds ago'],
      [90 * s, '1 minute ago'],
      [12 * 60 * s, '12 minutes ago'],
      [2 * 3600 * s, '2 hours ago'],
      [30 * 3600 * s, '1 day ago'],
      [3 * 86400 * s, '3 days ago'],
      [10 * 86400 * s, '1 week ago'],
      [-5 * s, '5 seconds from now'],
    ];
    for (const [ago, text] of cases) assert.equal(relativeTime(NOW - ago, NOW), text, String(ago));
  });

  it('exec pool: heading, rr columns, rows sorted by pid, no colour codes when off', () => {
    const out = renderPlugin(
      'http',
      [state({ pid: 300, statusStr: 'working', numExecs: 1131 }), state({ pid: 20, memoryUsage: 34_000_000, CPUPercent: 0.031 })],
      NOW,
      false,
    );
    const lines = out.trimEnd().split('\n');
    assert.equal(lines[0], 'Workers of [http]:');
    assert.match(lines[2]!, /PID.*STATUS.*EXECS.*MEMORY.*CPU%.*CREATED/);
    assert.ok(!lines[2]!.includes('USS'));
    assert.match(lines[4]!, /│ 20 +│ ready +│ 0 +│ 34 MB +│ 0\.03 +│ now +│/);
    assert.match(lines[5]!, /│ 300 │ working │ 1,131 │/);
    assert.ok(!out.includes('\x1b['));
  });

  it('fork pool: master line and USS column; colours only when asked', () => {
    const out = renderPlugin('http', [state({ pid: 5, masterPid: 4, uss: 3_000_000 })], NOW, true);
    assert.match(out, /^Workers of \[\x1b\[93mhttp\x1b\[0m\]:\nmaster: 4\n/); // eslint-disable-line no-control-regex -- ANSI colours
    assert.match(out, /USS/);
    assert.match(out, /3\.0 MB/);
    assert.match(out, /\x1b\[36mready\x1b\[0m/); // eslint-disable-line no-control-regex -- ANSI colours
  });

  it('extra workers of the dynamic allocator: an EXTRA column, only while there are some', () => {
    const out = renderPlugin('http', [state({ pid: 7 }), state({ pid: 8, dynamic: true })], NOW, false);
    const lines = out.trimEnd().split('\n');
    assert.match(lines[2]!, /CREATED.*EXTRA/);
    assert.match(lines[4]!, /│ 7 +│ ready .*│ +│$/);
    assert.match(lines[5]!, /│ 8 +│ ready .*│ yes +│$/);
    assert.ok(!renderPlugin('http', [state({ pid: 7 })], NOW, false).includes('EXTRA'));
    const widest = state({
      pid: 4194304,
      statusStr: 'maxMemoryReached',
      numExecs: 123456789,
      memoryUsage: 123_000_000,
      CPUPercent: 100,
      masterPid: 1,
      uss: 999_000_000,
      dynamic: true,
    });
    for (const line of renderPlugin('http', [widest], NOW, false).split('\n')) assert.ok([...line].length <= 80, `${[...line].length}: ${line}`);
  });

  it('fits 80 columns even with the widest values', () => {
    const wide = [
      state({
        pid: 4194304,
        statusStr: 'maxMemoryReached',
        numExecs: 123456789,
        memoryUsage: 123_000_000,
        CPUPercent: 100,
        created: (NOW - 12 * 60_000) * 1e6,
        masterPid: 4194303,
        uss: 999_000_000,
      }),
    ];
    const out = renderPlugin('http', wide, NOW, false);
    for (const line of out.split('\n')) assert.ok([...line].length <= 80, `${[...line].length}: ${line}`);
    const table = renderTable(['A', 'B'], [[{ text: 'x' }, { text: 'yy' }]]);
    assert.equal(table.split('\n')[0], '┌───┬────┐');
  });
});
