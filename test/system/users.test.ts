// server.user / server.group resolution: names and numbers from the system's database (getent) or passwd/group files, the primary group by default,
// server.group applied when given, and ConfigErrors naming the key when rrts is not root or a name is unknown.
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { lookupGroup, lookupUser, resolveIdentity } from '../../src/system/users.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-users-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const passwd = path.join(dir, 'passwd');
const group = path.join(dir, 'group');
fs.writeFileSync(
  passwd,
  'root:x:0:0:root:/root:/bin/bash\n# comment\nwww-data:x:33:33:www-data:/var/www:/usr/sbin/nologin\napp:x:1000:1001::/home/app:/bin/sh\n',
);
fs.writeFileSync(group, 'root:x:0:\nwww-data:x:33:\napps:x:1001:app\nshared:x:2000:app,www-data\n');
const files = { passwd, groupFile: group, file: '/etc/rrts/.rr.yaml', userKey: 'server.user', groupKey: 'server.group' };

describe('users', () => {
  test('lookups by name and by number', () => {
    assert.deepEqual(lookupUser('www-data', passwd), { name: 'www-data', uid: 33, gid: 33 });
    assert.deepEqual(lookupUser('1000', passwd), { name: 'app', uid: 1000, gid: 1001 });
    assert.equal(lookupUser('ghost', passwd), null);
    assert.equal(lookupGroup('shared', group), 2000);
    assert.equal(lookupGroup('4242', group), 4242);
    assert.equal(lookupGroup('ghost', group), null);
  });

  test("the system's database through NSS: the same entries as getent prints", () => {
    const nobody = execFileSync('getent', ['passwd', 'nobody'], { encoding: 'utf8' }).trim().split(':');
    assert.deepEqual(lookupUser('nobody'), { name: 'nobody', uid: Number(nobody[2]), gid: Number(nobody[3]) });
    assert.equal(lookupUser('rrts-no-such-user'), null);
    assert.equal(lookupGroup('root'), 0);
  });

  test('a user only NSS knows (an LDAP or sssd user) is found: getent is asked, not /etc/passwd', () => {
    // A getent first on PATH stands in for an NSS module that knows a user absent from /etc/passwd.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'rrts-getent-'));
    const savedPath = process.env.PATH;
    try {
      fs.writeFileSync(
        path.join(bin, 'getent'),
        '#!/bin/sh\n[ "$1 $2" = "passwd ldap-user" ] && echo "ldap-user:*:70001:70002::/home/ldap-user:/bin/sh" && exit 0\n' +
          '[ "$1 $2" = "group ldap-group" ] && echo "ldap-group:*:70003:" && exit 0\nexit 2\n',
        { mode: 0o755 },
      );
      process.env.PATH = `${bin}:${savedPath}`;
      assert.deepEqual(lookupUser('ldap-user'), { name: 'ldap-user', uid: 70001, gid: 70002 });
      assert.equal(lookupGroup('ldap-group'), 70003);
      assert.deepEqual(resolveIdentity({ user: 'ldap-user', group: 'ldap-group', userKey: 'server.user', groupKey: 'server.group', euid: 0 }), {
        uid: 70001,
        gid: 70003,
      });
    } finally {
      process.env.PATH = savedPath;
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });

  test('no user and no group: nothing to switch', () => {
    assert.equal(resolveIdentity({ ...files, user: '', group: '', euid: 1000 }), null);
  });

  test("the user's primary group by default; server.group when given", () => {
    assert.deepEqual(resolveIdentity({ ...files, user: 'app', euid: 0 }), { uid: 1000, gid: 1001 });
    assert.deepEqual(resolveIdentity({ ...files, user: 'app', group: 'shared', euid: 0 }), { uid: 1000, gid: 2000 });
  });

  test('not root: ConfigError saying workers can only switch user when rrts runs as root', () => {
    assert.throws(
      () => resolveIdentity({ ...files, user: 'app', euid: 1000 }),
      (err: Error & { code?: string; key?: string }) => {
        assert.equal(err.code, 'ERR_CONFIG');
        assert.equal(err.key, 'server.user');
        assert.match(err.message, /workers can only switch user when rrts runs as root/);
        assert.match(err.message, /\/etc\/rrts\/\.rr\.yaml/);
        return true;
      },
    );
  });

  test('unknown user or group: ConfigError naming the key', () => {
    assert.throws(() => resolveIdentity({ ...files, user: 'ghost', euid: 0 }), {
      code: 'ERR_CONFIG',
      key: 'server.user',
      message: /key 'server.user'.*unknown user "ghost"/,
    });
    assert.throws(() => resolveIdentity({ ...files, user: 'app', group: 'ghosts', euid: 0 }), {
      code: 'ERR_CONFIG',
      key: 'server.group',
      message: /unknown group "ghosts"/,
    });
  });
});
