// server.user / server.group / server.on_init.user (docs/compatibility.md §1.7): resolve names to a uid and gid through the
// system's user database (NSS, as Go's os/user does with cgo: LDAP and sssd users too), and refuse early
// (ConfigError) when rrts cannot switch users. rr takes the gid from the user's primary group and ignores
// server.group; rrts applies server.group when it is given.
import fs from 'node:fs';
import { ConfigError } from '../errors.js';
import { runChildSync } from './children.js';

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

/**
 * One entry of an NSS database by name or number, as `getent` prints it; null when there is none, undefined when
 * getent itself is missing (then the files are the whole database).
 */
function getent(database: 'passwd' | 'group', key: string): string[] | null | undefined {
  const result = runChildSync('getent', [database, key], { encoding: 'utf8', timeout: 10_000 });
  if (result.error) return undefined;
  if (result.status !== 0) return null;
  const line = result.stdout.split('\n')[0];
  return line ? line.split(':') : null;
}

/** The passwd entry of a user name (or numeric uid): NSS through getent, or the given file (tests, no getent). */
function passwdEntry(name: string, passwd: string | undefined): string[] | null {
  if (passwd === undefined) {
    const entry = getent('passwd', name);
    if (entry !== undefined) return entry && entry.length >= 4 ? entry : null;
  }
  return readLines(passwd ?? '/etc/passwd').find((f) => f.length >= 4 && (f[0] === name || (/^\d+$/.test(name) && f[2] === name))) ?? null;
}

/** The group entry of a group name: NSS through getent, or the given file. */
function groupEntry(name: string, group: string | undefined): string[] | null {
  if (group === undefined) {
    const entry = getent('group', name);
    if (entry !== undefined) return entry && entry.length >= 3 ? entry : null;
  }
  return readLines(group ?? '/etc/group').find((f) => f.length >= 3 && f[0] === name) ?? null;
}

/** A user by name (or numeric uid); `passwd` reads that file instead of the system's database. */
export function lookupUser(name: string, passwd?: string): PasswdEntry | null {
  const f = passwdEntry(name, passwd);
  if (f) return { name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) };
  return /^\d+$/.test(name) ? { name, uid: Number(name), gid: Number(name) } : null;
}

/** A group's gid by name (or a numeric gid); `group` reads that file instead of the system's database. */
export function lookupGroup(name: string, group?: string): number | null {
  const f = groupEntry(name, group);
  if (f) return Number(f[2]);
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
    throw new ConfigError(`workers can only switch user when rrts runs as root (rrts runs as uid ${euid}); remove ${key} or start rrts as root`, {
      file: opts.file,
      key,
    });
  }
  let identity: Identity = { uid: euid, gid: process.getegid?.() ?? 0 };
  if (opts.user !== '') {
    const entry = lookupUser(opts.user, opts.passwd);
    if (!entry) throw new ConfigError(`unknown user ${JSON.stringify(opts.user)} (not in the system's user database)`, { file: opts.file, key: opts.userKey });
    identity = { uid: entry.uid, gid: entry.gid };
  }
  if (group !== '') {
    const gid = lookupGroup(group, opts.groupFile);
    if (gid === null)
      throw new ConfigError(`unknown group ${JSON.stringify(group)} (not in the system's group database)`, { file: opts.file, key: opts.groupKey });
    identity = { ...identity, gid };
  }
  return identity;
}
