// server.user / server.group / server.on_init.user (docs/compatibility.md §1.7): resolve names to a uid and gid from
// /etc/passwd and /etc/group, and refuse early (ConfigError) when rrts cannot switch users. rr takes the gid from the
// user's primary group and ignores server.group; rrts applies server.group when it is given.
import fs from 'node:fs';
import { ConfigError } from '../errors.js';

export interface Identity {
  uid: number;
  gid: number;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

function readLines(file: string): string[][] {
  try {
    return fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.split(':'));
  } catch {
    return [];
  }
}

/** A user by name (or numeric uid) from /etc/passwd. */
export function lookupUser(name: string, passwd = '/etc/passwd'): PasswdEntry | null {
  for (const f of readLines(passwd)) {
    if (f.length < 4) continue;
    if (f[0] === name || (/^\d+$/.test(name) && f[2] === name)) return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) };
  }
  return /^\d+$/.test(name) ? { name, uid: Number(name), gid: Number(name) } : null;
}

/** A group's gid by name (or a numeric gid) from /etc/group. */
export function lookupGroup(name: string, group = '/etc/group'): number | null {
  for (const f of readLines(group)) {
    if (f.length >= 3 && f[0] === name) return Number(f[2]);
  }
  return /^\d+$/.test(name) ? Number(name) : null;
}

export interface IdentityOptions {
  user: string;
  group?: string;
  /** config key names for the messages */
  userKey: string;
  groupKey?: string;
  file?: string;
  /** tests: the effective uid of rrts */
  euid?: number;
  passwd?: string;
  groupFile?: string;
}

/** The uid/gid a child must run with, or null when no user (or group) is configured. */
export function resolveIdentity(opts: IdentityOptions): Identity | null {
  const group = opts.group ?? '';
  if (opts.user === '' && group === '') return null;
  const euid = opts.euid ?? process.geteuid?.() ?? 0;
  const key = opts.user !== '' ? opts.userKey : (opts.groupKey ?? opts.userKey);
  if (euid !== 0) {
    throw new ConfigError(
      `workers can only switch user when rrts runs as root (rrts runs as uid ${euid}); remove ${key} or start rrts as root`,
      { file: opts.file, key },
    );
  }
  let identity: Identity = { uid: euid, gid: process.getegid?.() ?? 0 };
  if (opts.user !== '') {
    const entry = lookupUser(opts.user, opts.passwd);
    if (!entry) throw new ConfigError(`unknown user ${JSON.stringify(opts.user)} (not in /etc/passwd)`, { file: opts.file, key: opts.userKey });
    identity = { uid: entry.uid, gid: entry.gid };
  }
  if (group !== '') {
    const gid = lookupGroup(group, opts.groupFile);
    if (gid === null) throw new ConfigError(`unknown group ${JSON.stringify(group)} (not in /etc/group)`, { file: opts.file, key: opts.groupKey });
    identity = { ...identity, gid };
  }
  return identity;
}
